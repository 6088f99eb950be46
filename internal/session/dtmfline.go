package session

import (
	"context"
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/dtmf"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Digits on their way to a party: the sendDtmf operation's, and those the
// other party sent (issue 11 point 8). Each party has one line: what is
// queued for it goes out one job at a time, in order, as RFC 4733 events
// when the party's SDP has telephone-event, else as SIP INFO
// application/dtmf-relay.

// maxQueuedDigits bounds the digits waiting for one party: a party flooding
// INFO must not grow the session without limit.
const maxQueuedDigits = 64

// dtmfJob is keys for one party.
type dtmfJob struct {
	keys []byte
	dur  time.Duration // tone length; 0 for the configured one
	op   bool          // the sendDtmf operation's (else a party's, forwarded)
}

// dtmfLine is what waits for one party and whether a sender runs toward it.
type dtmfLine struct {
	queue []dtmfJob
	busy  bool
}

func (s *Session) fromOf(l *sip.Leg) media.MediaInfo {
	if l == s.a {
		return s.fromA
	}
	return s.fromB
}

// forwardDtmf hands a digit a party sent to the other party, unless it is
// already on its way in the relayed RTP (both parties negotiated
// telephone-event; mapEvents maps the payload type). An RFC 4733 event
// toward a party without telephone-event was dropped from the relay
// (mapEvents) and goes as INFO instead. Digits go only to an answered
// party, and not while callctl holds the call (the parties are apart) or
// transfers it.
func (s *Session) forwardDtmf(ev dtmfReceived) {
	to := s.other(ev.leg)
	if to == nil || !s.answered || s.transfer != nil {
		return
	}
	switch s.state() {
	case InCall, CallerOnHold, CalleeOnHold:
	default:
		return
	}
	if ev.viaRTP && s.fromOf(to).TelephoneEvent >= 0 {
		return
	}
	s.enqueueDtmf(to, dtmfJob{keys: []byte{ev.key}, dur: ev.dur})
}

func (s *Session) enqueueDtmf(l *sip.Leg, job dtmfJob) {
	if s.dtmfLines == nil {
		s.dtmfLines = map[*sip.Leg]*dtmfLine{}
	}
	line := s.dtmfLines[l]
	if line == nil {
		line = &dtmfLine{}
		s.dtmfLines[l] = line
	}
	if !job.op && len(line.queue) >= maxQueuedDigits {
		s.log.Warn("too many digits waiting for a party; dropping one", zap.String("leg", l.ID()), zap.String("digit", string(job.keys)))
		return
	}
	line.queue = append(line.queue, job)
	s.runDtmf(l)
}

// runDtmf starts the next job for a party when none runs.
func (s *Session) runDtmf(l *sip.Leg) {
	line := s.dtmfLines[l]
	if line == nil || line.busy || len(line.queue) == 0 {
		return
	}
	if l != s.a && l != s.b {
		delete(s.dtmfLines, l) // the party left (transfer)
		for _, job := range line.queue {
			if job.op && s.op != nil && s.op.req.name == "sendDtmf" {
				s.finishOp(&OpError{Code: CodePeerRefused, Op: "sendDtmf", Msg: "the party left the call before its keys were sent"})
			}
		}
		return
	}
	job := line.queue[0]
	line.queue = line.queue[1:]
	line.busy = true
	ctx := s.ctx
	info := s.fromOf(l)
	if info.TelephoneEvent >= 0 {
		ep := s.endpoint(l)
		cfg := dtmf.EncoderConfig{PayloadType: uint8(info.TelephoneEvent), Duration: s.e.cfg.DTMFDuration, Gap: s.e.cfg.DTMFGap}
		if job.dur > 0 {
			cfg.Duration = clampTone(job.dur)
		}
		for _, c := range info.Codecs {
			if int(c.PayloadType) == info.TelephoneEvent && c.ClockRate > 0 {
				cfg.ClockRate = c.ClockRate // telephone-event/16000 on wideband legs
			}
		}
		// While events play, the other party's audio does not go to this
		// party (their timestamps would interleave with the events').
		ep.MuteRelay(true)
		if job.op {
			ep.StopMusic()
		}
		s.goOwned(func() {
			err := dtmf.Send(ctx, ep, cfg, job.keys)
			if !job.op && err == nil {
				pause(ctx, cfg.Gap) // before the next forwarded digit's event
			}
			s.q.push(dtmfDone{leg: l, ep: ep, op: job.op, err: err})
		})
		return
	}
	dur := s.e.cfg.DTMFDuration
	if job.dur > 0 {
		dur = job.dur
	}
	gap := s.e.cfg.DTMFGap
	s.goOwned(func() { s.q.push(dtmfDone{leg: l, op: job.op, err: sendInfo(ctx, l, job.keys, dur, gap)}) })
}

// sendInfo sends one INFO application/dtmf-relay per key, paced like tones.
func sendInfo(ctx context.Context, l *sip.Leg, keys []byte, dur, gap time.Duration) error {
	for i, k := range keys {
		if i > 0 && !pause(ctx, gap) {
			return ctx.Err()
		}
		res, err := l.Request(ctx, gosip.INFO, dtmf.ContentTypeRelay, dtmf.FormatRelay(k, dur))
		if err != nil {
			return err
		}
		if res.StatusCode >= 300 {
			return &OpError{Code: CodePeerRefused, Status: res.StatusCode,
				Msg: fmt.Sprintf("the party refused INFO for digit %c with %d %s", k, res.StatusCode, res.Reason)}
		}
		// Pace like a tone would be.
		if !pause(ctx, clampTone(dur)) {
			return nil
		}
	}
	return nil
}

// clampTone keeps a tone length a party asked for (an INFO's Duration)
// within what the encoder plays: 40 ms (ITU-T Q.24) to 10 s.
func clampTone(d time.Duration) time.Duration {
	return min(max(d, 40*time.Millisecond), 10*time.Second)
}

// pause waits d, or less if ctx ends; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// keepEvents is the answer body a party that offered telephone-event gets
// when the other party answered without it: with telephone-event added
// (media.WithTelephoneEvent), as callctl itself takes the party's events
// and hands them on as INFO, and plays the other party's INFO digits to it
// as events. Otherwise, or if the body cannot take it, body as it is.
func keepEvents(body []byte, offer, answer media.MediaInfo) []byte {
	if offer.TelephoneEvent < 0 || answer.TelephoneEvent >= 0 || answer.Port0 {
		return body
	}
	var rate uint32
	for _, c := range offer.Codecs {
		if int(c.PayloadType) == offer.TelephoneEvent {
			rate = c.ClockRate
		}
	}
	out, err := media.WithTelephoneEvent(body, uint8(offer.TelephoneEvent), rate)
	if err != nil {
		return body
	}
	return out
}

// mapEvents maps telephone-event payload types between the legs when the
// parties chose different ones (an answerer may, for dynamic types), keeps
// a party's events from the other party when that one has no
// telephone-event (they reach it as SIP INFO, forwardDtmf), and points each
// leg's DTMF tap at the type the party sends.
//
// A party sends with the types of the SDP it was sent (RFC 3264 §6.1):
// through callctl, the other party's. Some send with their own; both are
// mapped, and both dropped toward a party without telephone-event.
func (s *Session) mapEvents() {
	if s.ea == nil || s.eb == nil || s.b == nil {
		return
	}
	ta, tb := s.fromA.TelephoneEvent, s.fromB.TelephoneEvent // what each receives
	sa, sb := s.eventsSent(s.a), s.eventsSent(s.b)
	s.ea.ResetPayloadMap()
	s.eb.ResetPayloadMap()
	mapInto(s.eb, tb, sa, ta) // the caller's events, toward the callee
	mapInto(s.ea, ta, sb, tb)
	s.tapDtmf(s.a, sa)
	s.tapDtmf(s.b, sb)
}

// mapInto makes ep send the events it relays with type want, its party's,
// or drop them when want is -1 (no telephone-event).
func mapInto(ep *media.Endpoint, want int, sent ...int) {
	for _, pt := range sent {
		switch {
		case pt < 0 || pt == want:
		case want < 0:
			ep.DropPayload(uint8(pt))
		default:
			ep.SetPayloadMap(uint8(pt), uint8(want))
		}
	}
}

// eventsSent is the telephone-event payload type a party sends: the one of
// the SDP callctl last sent it, else the one it listed itself.
func (s *Session) eventsSent(l *sip.Leg) int {
	body, c := s.lastToA, &s.sentEvents[0]
	if l == s.b {
		body, c = s.lastToB, &s.sentEvents[1]
	}
	if len(body) > 0 {
		// Each SDP callctl sends is a new slice: parsed once, not at every
		// mapEvents (twice a call set-up).
		if !sameBytes(c.body, body) {
			c.body, c.pt = body, -1
			ok := false
			if w := s.writer(l); w != nil {
				c.pt, ok = w.SentTelephoneEvent(body) // known as it was written
			}
			if !ok {
				c.pt = -1
				if info, err := media.ParseSDP(body); err == nil {
					c.pt = info.TelephoneEvent
				}
			}
		}
		if c.pt >= 0 {
			return c.pt
		}
	}
	return s.fromOf(l).TelephoneEvent
}

// sentEventType is eventsSent's memory of one party's last SDP from
// callctl and its telephone-event type.
type sentEventType struct {
	body []byte
	pt   int
}
