package session

import (
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// UPDATE from a party (RFC 3311), in an early or a confirmed dialog. One
// without SDP refreshes the session and is answered here; one whose offer
// changes nothing the other party sees is answered here too (offer.go);
// any other is relayed to the other party, as UPDATE when that party's UA
// allows it (its Allow header), else as a re-INVITE once the call is
// answered, and the other party's answer comes back in the 200.

// updateTag marks the Result of an UPDATE callctl relayed.
type updateTag struct{}

func (s *Session) onUpdate(ev *sip.Request) {
	from := ev.Leg
	body := ev.Request.Body()
	if s.state().Ended() {
		ev.Respond(481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if len(body) == 0 {
		// No offer: a session refresh (RFC 3311 §5.2, RFC 4028); it
		// concerns this dialog only.
		ev.Respond(200, "OK", nil)
		return
	}
	if s.relay != nil || s.inviting[s.other(from)] != nil || s.inviting[from] != nil {
		// An offer of callctl's own, or one relayed, is pending (RFC 3311
		// §5.2): glare.
		ev.Respond(491, "Request Pending", nil)
		return
	}
	if s.delayed || (!s.answered && (from == s.a && len(s.lastToA) == 0 || from == s.b && len(s.rawFromB) == 0)) {
		// The first offer/answer of the dialog is not complete (RFC 3311
		// §5.1): the party may try again once it is.
		ev.Respond(500, "Server Internal Error", nil, gosip.NewHeader("Retry-After", "1"),
			warning("the initial offer/answer is not complete"))
		return
	}
	info, err := media.ParseSDP(body)
	if err != nil {
		s.log.Warn("refusing UPDATE with bad SDP", zap.String("leg", from.ID()), zap.Error(err))
		ev.Respond(488, "Not Acceptable Here", nil, warning("bad SDP: "+err.Error()))
		return
	}
	if s.state() == OnHold {
		// A client holds both parties: answered with the hold, as a
		// party's re-INVITE is (reinvite.go).
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
		ev.Respond(200, "OK", answer)
		return
	}
	to := s.other(from)
	byUpdate := s.peerAllows(to, gosip.UPDATE)
	if !s.answered && !byUpdate {
		// Before the answer only an UPDATE can carry the offer on; the
		// other party's UA does not take one.
		ev.Respond(488, "Not Acceptable Here", nil, warning("the other party does not accept UPDATE before the call is answered"))
		return
	}
	out, err := s.writer(to).Rewrite(body, s.endpoint(to).Advertise(), s.endpoint(to).Port())
	if err != nil {
		ev.Respond(488, "Not Acceptable Here", nil, warning(err.Error()))
		return
	}
	s.relay = &relay{from: from, req: ev, offer: info, body: body, out: out}
	if !byUpdate {
		s.sendReinvite(to, out, inviteRelay)
		return
	}
	if err := to.Update(out, updateTag{}); err != nil {
		s.relay = nil
		ev.Respond(500, "Server Internal Error", nil, warning("relaying UPDATE: "+err.Error()))
	}
}

// onUpdateResult is the other party's answer to a relayed UPDATE, handled
// as the answer to a relayed re-INVITE is.
func (s *Session) onUpdateResult(ev *sip.Result) {
	if ev.Status >= 200 && ev.Status < 300 && len(ev.Response.Body()) == 0 {
		// A 2xx without the answer (RFC 3311 §5.2 requires one).
		ev.Status = 488
	}
	s.onRelayResult(&sip.ReinviteResult{Leg: ev.Leg, Response: ev.Response, Status: ev.Status, Err: ev.Err})
}

// peerAllows reports whether a leg's peer listed method in the Allow header
// of its dialog-creating INVITE (the caller) or of its latest response to
// callctl's INVITE (the callee).
func (s *Session) peerAllows(l *sip.Leg, method gosip.RequestMethod) bool {
	allow := s.allowB
	if l == s.a {
		allow = sip.HeaderValues(s.a.Invite().GetHeaders("Allow"))
	}
	return sip.AllowsMethod(allow, method)
}

// noteAllow remembers the Allow header of the callee's response.
func (s *Session) noteAllow(res *gosip.Response) {
	if hs := res.GetHeaders("Allow"); len(hs) > 0 {
		s.allowB = sip.HeaderValues(hs)
	}
}
