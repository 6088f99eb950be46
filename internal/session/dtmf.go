package session

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/dtmf"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// DTMFInfo is a digit a party sent.
type DTMFInfo struct {
	Digit string `json:"digit"`
	Party string `json:"party"` // the party's number
	Role  string `json:"role"`  // "caller" or "callee"
}

type dtmfDone struct{ err error }
type dtmfReceived struct {
	leg *sip.Leg
	key byte
}

// startDtmf sends keys to a party: RFC 4733 events in the RTP toward it
// when its SDP has telephone-event, else SIP INFO application/dtmf-relay.
func (s *Session) startDtmf(keys []byte, partyNumber string) {
	if !s.requireState(dtmfStates) {
		return
	}
	leg := s.legOf(partyNumber)
	info := s.fromA
	if leg == s.b {
		info = s.fromB
	}
	ep := s.endpoint(leg)
	cfg := dtmf.EncoderConfig{Duration: s.e.cfg.DTMFDuration, Gap: s.e.cfg.DTMFGap}
	if info.TelephoneEvent >= 0 {
		cfg.PayloadType = uint8(info.TelephoneEvent)
		for _, c := range info.Codecs {
			if int(c.PayloadType) == info.TelephoneEvent && c.ClockRate > 0 {
				cfg.ClockRate = c.ClockRate // telephone-event/16000 on wideband legs
			}
		}
		// While digits play, the other party's audio does not go to this
		// party (their timestamps would interleave with the event's).
		s.endpoint(s.other(leg)).Disconnect()
		ep.StopMusic()
		ctx := s.ctx
		s.goOwned(func() { s.q.push(dtmfDone{err: dtmf.Send(ctx, ep, cfg, keys)}) })
		return
	}
	dur := s.e.cfg.DTMFDuration
	gap := s.e.cfg.DTMFGap
	ctx := s.ctx
	s.goOwned(func() {
		for i, k := range keys {
			if i > 0 {
				select {
				case <-time.After(gap):
				case <-ctx.Done():
					s.q.push(dtmfDone{err: ctx.Err()})
					return
				}
			}
			res, err := leg.Request(ctx, gosip.INFO, "application/dtmf-relay", dtmf.FormatRelay(k, dur))
			if err != nil {
				s.q.push(dtmfDone{err: err})
				return
			}
			if res.StatusCode >= 300 {
				s.q.push(dtmfDone{err: &OpError{Code: CodePeerRefused, Status: res.StatusCode,
					Msg: fmt.Sprintf("the party refused INFO for digit %c with %d %s", k, res.StatusCode, res.Reason)}})
				return
			}
			// Pace like a tone would be.
			select {
			case <-time.After(dur):
			case <-ctx.Done():
			}
		}
		s.q.push(dtmfDone{})
	})
}

func (s *Session) onDtmfDone(ev dtmfDone) {
	if s.finished {
		return
	}
	switch s.state() {
	case OnHold:
		s.startMusic()
	default:
		media.Connect(s.ea, s.eb)
	}
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
			s.q.push(dtmfReceived{leg: l, key: key})
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
	s.log.Info("DTMF received", zap.String("digit", string(ev.key)), zap.String("party", role))
	s.publishDTMF(DTMFInfo{Digit: string(ev.key), Party: number, Role: role})
}

// onInfo takes DTMF from a party's SIP INFO; other INFO is acknowledged.
func (s *Session) onInfo(ev *sip.Request) {
	ct := ""
	if h := ev.Request.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(h.Value()))
	}
	var key byte
	var err error
	switch {
	case strings.HasPrefix(ct, "application/dtmf-relay"):
		key, _, err = dtmf.ParseRelay(ev.Request.Body())
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
	s.onDtmfReceived(dtmfReceived{leg: ev.Leg, key: key})
}

// goOwned runs f on a goroutine the session waits for before it is gone.
func (s *Session) goOwned(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

var _ = context.Background
