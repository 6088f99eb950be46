package session

import (
	"bytes"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// Offers that need no other party: the answer of a delayed offer, carried
// from the caller's ACK to the callee's, and party offers that change
// nothing the other party sees (issue 11 point 6), answered here.

// onDelayedAnswer takes the caller's answer to the callee's offer (a delayed
// offer, RFC 3264 §4: the offer came in the callee's 2xx) from the caller's
// ACK, points the caller's endpoint at it and ACKs the callee's 2xx with it
// rewritten onto the callee's endpoint. An ACK without a usable answer ends
// the call: the callee's 2xx is ACKed (without SDP) and both legs get BYE.
func (s *Session) onDelayedAnswer(ev *sip.Acked) {
	s.delayed = false
	info, err := media.ParseSDP(ev.Body)
	var out []byte
	if err == nil {
		out, err = s.wb.Rewrite(keepEvents(ev.Body, s.fromB, info), s.eb.Advertise(), s.eb.Port())
	}
	if err != nil {
		why := "caller's ACK carried no usable SDP answer to the callee's offer: " + err.Error()
		s.log.Warn("ending delayed-offer call", zap.Error(err))
		s.hangupAll(why)
		s.end(Error, why)
		return
	}
	s.takeOffer(s.a, ev.Body, info)
	s.lastToB = out
	if err := s.b.Ack(out); err != nil {
		s.log.Warn("callee's 2xx could not be ACKed with the answer", zap.Error(err))
	}
	s.mapEvents()
}

// answerUnchanged answers a party's offer here, without the other party,
// when it changes nothing that party sees (media.SameSDPForPeer: only the
// sender's address, ports or o= version moved): the party's endpoint follows
// the new address (the latch with it, media/latch.go) and the answer is the
// SDP callctl last sent the party, unchanged and so with the same o=
// version (RFC 3264 §8). It reports false when the offer has to cross.
func (s *Session) answerUnchanged(from *sip.Leg, body []byte, info media.MediaInfo) ([]byte, bool) {
	prev, last := s.rawFromA, s.lastToA
	if from == s.b {
		prev, last = s.rawFromB, s.lastToB
	}
	if len(prev) == 0 || len(last) == 0 || !media.SameSDPForPeer(prev, body) || !answers(last, info) {
		return nil, false
	}
	s.takeOffer(from, body, info)
	return bytes.Clone(last), true
}

// answers reports whether the SDP callctl last sent a party is a valid
// answer to the party's new offer: each payload type it lists is offered
// with the same encoding (RFC 3264 §6.1), so it may be sent again as is.
func answers(last []byte, offer media.MediaInfo) bool {
	l, err := media.ParseSDP(last)
	if err != nil {
		return false
	}
	for _, c := range l.Codecs {
		found := false
		for _, o := range offer.Codecs {
			if o.PayloadType == c.PayloadType && sameEncoding(o, c) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return l.Direction == answerDirection(offer.Direction, l.Direction)
}

func sameEncoding(a, b media.Codec) bool {
	return media.SameForPeer(media.MediaInfo{Codecs: []media.Codec{a}}, media.MediaInfo{Codecs: []media.Codec{b}})
}

// answerDirection is whether d may answer an offer of offered (RFC 3264
// §6.1): d itself when allowed, else the offer's reverse.
func answerDirection(offered, d media.Direction) media.Direction {
	switch offered {
	case media.SendOnly:
		if d == media.RecvOnly || d == media.Inactive {
			return d
		}
	case media.RecvOnly:
		if d == media.SendOnly || d == media.Inactive {
			return d
		}
	case media.Inactive:
		if d == media.Inactive {
			return d
		}
	default:
		return d
	}
	return offered.Reverse()
}

// passAnswerOn offers the other party what a party answered in the ACK of
// its offerless re-INVITE, when that changes something the other party sees
// (a hold, a codec): the party's own re-INVITE asked for it. Nothing on the
// party's side waits for the other party's answer, so that answer is only
// applied to the relay, as a rollback's is (ops.go).
func (s *Session) passAnswerOn(from *sip.Leg, prev, body []byte, info media.MediaInfo) {
	if !s.answered || s.state() == OnHold || media.SameSDPForPeer(prev, body) {
		return
	}
	to := s.other(from)
	if s.relay != nil || s.inviting[to] != nil {
		s.log.Info("not passing on an offerless re-INVITE's answer: another offer is in progress", zap.String("leg", from.ID()))
		return
	}
	out, err := s.writer(to).Rewrite(body, s.endpoint(to).Advertise(), s.endpoint(to).Port())
	if err != nil {
		s.log.Warn("offerless re-INVITE's answer not passed on", zap.Error(err))
		return
	}
	s.sendReinvite(to, out, inviteRollback)
	s.setHold(from, info.Direction == media.SendOnly || info.Direction == media.Inactive)
}
