package session

import (
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// In-dialog requests from a party, and the SDP each party last sent: a
// re-INVITE is relayed to the other party (or answered here while a client
// holds the call), and its offer and answer point the endpoints at the
// parties' media.

func (s *Session) onRequest(ev *sip.Request) {
	req := ev.Request
	switch req.Method {
	case gosip.INVITE:
		s.relayReinvite(ev)
	case gosip.INFO:
		s.onInfo(ev)
	case gosip.NOTIFY:
		s.onNotify(ev)
	case gosip.UPDATE:
		s.onUpdate(ev)
	case gosip.REFER:
		s.onPartyRefer(ev) // party_refer.go
	default:
		// RFC 3261 8.2.1: a method callctl knows but does not take in a
		// dialog (MESSAGE, SUBSCRIBE, …) gets 405 with what it does take.
		ev.Respond(405, "Method Not Allowed", nil, gosip.NewHeader("Allow", sip.Allowed()))
	}
}

// relayReinvite passes a party's re-INVITE to the other party with the SDP
// rewritten (RFC 3264 8); the answer comes back in onReinviteResult.
func (s *Session) relayReinvite(ev *sip.Request) {
	from := ev.Leg
	if !s.answered || s.state().Ended() {
		ev.Respond(491, "Request Pending", nil)
		return
	}
	if s.relay != nil || s.inviting[s.other(from)] != nil {
		// Another offer/answer on this call is in progress: glare
		// (RFC 3261 14.2); the party retries.
		ev.Respond(491, "Request Pending", nil)
		return
	}
	body := ev.Request.Body()
	if len(body) == 0 {
		// An offerless re-INVITE: callctl offers what it last sent this
		// party; the answer comes in the ACK.
		last := s.lastToA
		if from == s.b {
			last = s.lastToB
		}
		if from == s.a {
			s.offerlessA = true
		} else {
			s.offerlessB = true
		}
		ev.Respond(200, "OK", last)
		return
	}
	info, err := media.ParseSDP(body)
	if err != nil {
		s.log.Warn("refusing re-INVITE with bad SDP", zap.String("leg", from.ID()), zap.Error(err))
		ev.Respond(488, "Not Acceptable Here", nil, warning("bad SDP: "+err.Error()))
		return
	}
	if s.state() == OnHold {
		// A client holds both parties: a party's own offer (a session
		// refresh, say) is answered here with the hold, not relayed.
		s.takeOffer(from, body, info)
		answer, err := s.offerWithDirection(from, holdAnswer(info.Direction, s.e.cfg.HoldInactive))
		if err != nil {
			ev.Respond(488, "Not Acceptable Here", nil, warning(err.Error()))
			return
		}
		s.setLastTo(from, answer)
		ev.Respond(200, "OK", answer)
		return
	}
	if answer, ok := s.answerUnchanged(from, body, info); ok {
		// Nothing the other party sees has changed (a session refresh, a
		// moved port): answered here, not relayed (issue 11 point 6).
		ev.Respond(200, "OK", answer)
		return
	}
	to := s.other(from)
	out, err := s.writer(to).Rewrite(body, s.endpoint(to).Advertise(), s.endpoint(to).Port())
	if err != nil {
		ev.Respond(488, "Not Acceptable Here", nil, warning(err.Error()))
		return
	}
	s.relay = &relay{from: from, req: ev, offer: info, body: body, out: out}
	s.sendReinvite(to, out, inviteRelay)
}

// holdAnswer is the direction that answers a party's offer while a client
// holds the call (RFC 3264 6.1).
func holdAnswer(offered media.Direction, inactive bool) media.Direction {
	if inactive || offered == media.SendOnly || offered == media.Inactive {
		return media.Inactive
	}
	return media.SendOnly
}

// takeOffer records a party's new SDP and points its endpoint at it.
func (s *Session) takeOffer(l *sip.Leg, body []byte, info media.MediaInfo) {
	s.setFrom(l, info)
	s.setRawFrom(l, body)
	if info.Direction != media.Inactive {
		s.endpoint(l).SetRemote(info.Remote, info.RTCP)
	}
}

func (s *Session) setFrom(l *sip.Leg, info media.MediaInfo) {
	s.rekey(l, info)
	if l == s.a {
		s.fromA = info
	} else {
		s.fromB = info
	}
	s.mapEvents() // and the DTMF taps
}

func (s *Session) setRawFrom(l *sip.Leg, body []byte) {
	if l == s.a {
		s.rawFromA = body
	} else {
		s.rawFromB = body
	}
}

func (s *Session) onRelayResult(ev *sip.ReinviteResult) {
	r := s.relay
	if r == nil || ev.Leg != s.other(r.from) {
		return
	}
	s.relay = nil
	if ev.Status < 200 || ev.Status >= 300 {
		reason := "Request Timeout"
		if ev.Response != nil {
			reason = ev.Response.Reason
		}
		r.req.Respond(ev.Status, reason, nil)
		return
	}
	answer, err := media.ParseSDP(ev.Response.Body())
	if err != nil {
		s.log.Warn("re-INVITE answered with bad SDP", zap.Error(err))
		r.req.Respond(488, "Not Acceptable Here", nil, warning("far end's SDP: "+err.Error()))
		return
	}
	s.setLastTo(ev.Leg, r.out)
	s.takeOffer(ev.Leg, ev.Response.Body(), answer)
	s.takeOffer(r.from, r.body, r.offer)
	out, err := s.writer(r.from).Rewrite(keepEvents(ev.Response.Body(), r.offer, answer), s.endpoint(r.from).Advertise(), s.endpoint(r.from).Port())
	if err != nil {
		r.req.Respond(500, "Server Internal Error", nil, warning(err.Error()))
		return
	}
	if r.from == s.a {
		s.lastToA = out
	} else {
		s.lastToB = out
	}
	r.req.Respond(200, "OK", out)
	s.mapEvents()
	s.setHold(r.from, r.offer.Direction == media.SendOnly || r.offer.Direction == media.Inactive)
}

// onAcked takes the answer of an offerless re-INVITE, or of a delayed
// offer, from its ACK.
func (s *Session) onAcked(ev *sip.Acked) {
	if ev.Leg == s.a && s.delayed {
		s.onDelayedAnswer(ev)
		return
	}
	pending := (ev.Leg == s.a && s.offerlessA) || (ev.Leg == s.b && s.offerlessB)
	if !pending {
		return
	}
	if ev.Leg == s.a {
		s.offerlessA = false
	} else {
		s.offerlessB = false
	}
	info, err := media.ParseSDP(ev.Body)
	if err != nil {
		s.log.Warn("ACK without a usable SDP answer", zap.Error(err))
		return
	}
	prev := s.rawFromA
	if ev.Leg == s.b {
		prev = s.rawFromB
	}
	s.takeOffer(ev.Leg, ev.Body, info)
	s.passAnswerOn(ev.Leg, prev, ev.Body, info)
}

// setHold records whether a party's latest offer holds the other party and
// moves between IN_CALL, CALLEE_ON_HOLD and CALLER_ON_HOLD.
func (s *Session) setHold(by *sip.Leg, holding bool) {
	if by == s.a {
		s.holdA = holding
	} else {
		s.holdB = holding
	}
	cur := s.state()
	if cur != InCall && cur != CallerOnHold && cur != CalleeOnHold {
		return
	}
	next := InCall
	switch {
	case s.holdA && s.holdB:
		next = cur
		if next == InCall {
			next = CalleeOnHold
		}
	case s.holdA:
		next = CalleeOnHold
	case s.holdB:
		next = CallerOnHold
	}
	reason := "resumed"
	if holding {
		reason = "held by the " + map[bool]string{true: "caller", false: "callee"}[by == s.a]
	}
	s.transition(next, reason)
}
