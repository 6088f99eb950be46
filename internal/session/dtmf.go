package session

import (
	"strings"
	"time"

	"github.com/callctl/callctl/internal/dtmf"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// DTMFInfo is a digit a party sent.
type DTMFInfo struct {
	Digit string `json:"digit"`
	Party string `json:"party"` // the party's number
	Role  string `json:"role"`  // "caller" or "callee"
}

type dtmfDone struct {
	leg *sip.Leg
	ep  *media.Endpoint // muted while RFC 4733 events played to the party; nil for INFO
	op  bool            // the sendDtmf operation's keys
	err error
}

type dtmfReceived struct {
	leg    *sip.Leg
	key    byte
	dur    time.Duration // from an INFO's Duration; 0 when unknown
	viaRTP bool          // an RFC 4733 event, not an INFO
}

// startDtmf sends keys to a party: RFC 4733 events in the RTP toward it
// when its SDP has telephone-event, else SIP INFO application/dtmf-relay.
// They wait behind digits of the other party still on their way to it
// (dtmfline.go).
func (s *Session) startDtmf(keys []byte, partyNumber string) {
	if !s.requireState(dtmfStates) {
		return
	}
	s.enqueueDtmf(s.legOf(partyNumber), dtmfJob{keys: keys, op: true})
}

func (s *Session) onDtmfDone(ev dtmfDone) {
	if s.finished {
		return
	}
	if ev.ep != nil {
		ev.ep.MuteRelay(false)
	}
	if line := s.dtmfLines[ev.leg]; line != nil {
		line.busy = false
	}
	if !ev.op {
		if ev.err != nil && s.ctx.Err() == nil {
			s.log.Info("a digit for the other party was not delivered", zap.String("leg", ev.leg.ID()), zap.Error(ev.err))
		}
		s.runDtmf(ev.leg)
		return
	}
	if ev.ep != nil && s.state() == OnHold {
		s.startMusic() // stopped while the events played
	}
	s.runDtmf(ev.leg)
	if s.op == nil || s.op.req.name != "sendDtmf" {
		return
	}
	if ev.err != nil {
		if oe, ok := ev.err.(*OpError); ok {
			oe.Op = "sendDtmf"
			s.finishOp(oe)
			return
		}
		s.finishOp(&OpError{Code: CodePeerRefused, Op: "sendDtmf", Msg: ev.err.Error()})
		return
	}
	s.finishOp(nil)
}

// tapDtmf watches a leg's endpoint for RFC 4733 events of payload type pt
// (none for -1), unless it watches that type already: a new detector
// would report an event in progress a second time.
func (s *Session) tapDtmf(l *sip.Leg, pt int) {
	if cur, ok := s.tapped[l]; ok && cur == pt {
		return
	}
	s.tapped[l] = pt
	s.watchDtmf(l, s.endpoint(l), pt)
}

// watchDtmf reports RFC 4733 events a party sends, once per event.
func (s *Session) watchDtmf(l *sip.Leg, ep *media.Endpoint, pt int) {
	if ep == nil {
		return
	}
	if pt < 0 {
		ep.SetEventTap(-1, nil)
		return
	}
	det := &dtmf.Detector{}
	ep.SetEventTap(pt, func(ssrc, ts uint32, payload []byte) {
		if key, ok := det.Feed(ssrc, ts, payload); ok {
			s.q.push(dtmfReceived{leg: l, key: key, viaRTP: true})
		}
	})
}

func (s *Session) onDtmfReceived(ev dtmfReceived) {
	role, number := "caller", s.snap.Caller.Number
	if ev.leg == s.b {
		role, number = "callee", s.snap.Callee.Number
	} else if ev.leg != s.a {
		return
	}
	s.log.Info("DTMF received", zap.String("digit", string(ev.key)), zap.String("party", role), zap.Bool("rfc4733", ev.viaRTP))
	s.publishDTMF(DTMFInfo{Digit: string(ev.key), Party: number, Role: role})
	s.forwardDtmf(ev)
}

// onInfo takes DTMF from a party's SIP INFO; other INFO is acknowledged.
func (s *Session) onInfo(ev *sip.Request) {
	ct := ""
	if h := ev.Request.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(h.Value()))
	}
	var key byte
	var dur time.Duration
	var err error
	switch {
	case strings.HasPrefix(ct, "application/dtmf-relay"):
		key, dur, err = dtmf.ParseRelay(ev.Request.Body())
	case strings.HasPrefix(ct, "application/dtmf"):
		key, err = dtmf.ParseDTMFBody(ev.Request.Body())
	default:
		ev.Respond(200, "OK", nil)
		return
	}
	if err != nil {
		ev.Respond(400, "Bad Request", nil, warning(err.Error()))
		return
	}
	ev.Respond(200, "OK", nil)
	s.onDtmfReceived(dtmfReceived{leg: ev.Leg, key: key, dur: dur})
}

// goOwned runs f on a goroutine the session waits for before it is gone.
func (s *Session) goOwned(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}
