package session

import (
	"strings"

	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
)

// How a call ends: a party's BYE, and callctl hanging up every leg the way
// its state needs.

// onBye ends the call when a party hangs up. The other party's BYE carries
// the Reason the party gave, when well-formed (RFC 3326), else callctl's.
func (s *Session) onBye(ev *sip.Bye) {
	// RFC 3261 15.1.2: requests still pending in the call are answered,
	// 487 recommended; a party's re-INVITE waiting for the other party's
	// answer is one.
	s.endRelay()
	r := `SIP;cause=200;text="peer hung up"`
	if carried := carriedReason(ev.Request); carried != "" {
		r = carried
	}
	if t := s.transfer; t != nil {
		if t.party != nil && ev.Leg == t.transferor {
			s.referrerLeft(t)
			return
		}
		if t.completed {
			// The transferee's side ended the old dialog, as RFC 5589
			// expects after a successful transfer.
			s.finished = true
			return
		}
		if ev.Leg == t.leg {
			s.onFallbackFailed(&sip.Failed{Leg: ev.Leg, Status: 480})
			return
		}
		if ev.Leg == t.transferee && t.leg == nil {
			switch s.state() {
			case Transferring:
				// It accepted REFER (its 202 or a NOTIFY said so) and left
				// the old call before its final NOTIFY was handled: the
				// NOTIFY can no longer reach this dialog, and a transferee
				// leaves once it has the target (RFC 5589 6).
				t.transfereeLeft = true
				s.completeTransfer("the " + s.partyName(t.transferee) + " accepted REFER and left the call before its final NOTIFY")
				return
			case TransferRequested:
				// Its answer to REFER is still on the way; it decides.
				t.transfereeLeft = true
				return
			}
		}
	}
	if ev.Leg != s.a && ev.Leg != s.b {
		return
	}
	if ev.Leg == s.a {
		if s.answered {
			s.b.Bye(r)
		} else if s.b != nil {
			s.b.Cancel()
		}
		s.end(CallerHungUp, "caller sent BYE")
		return
	}
	s.a.Bye(r)
	s.end(CalleeHungUp, "callee sent BYE")
}

// endRelay answers a party's re-INVITE still waiting for the other party's
// answer with 487 Request Terminated (RFC 3261 15.1.2, 9.2), as the call
// ends: it must not wait 32 s for an answer that will never come.
func (s *Session) endRelay() {
	if r := s.relay; r != nil {
		s.relay = nil
		r.req.Respond(487, "Request Terminated", nil)
	}
}

// hangupAll ends every leg the way its state needs (RFC 3261 15): BYE when
// answered, CANCEL for a ringing outbound leg, and for an unanswered inbound
// one 487 (a client's hangup) or 503 (callctl stopping).
func (s *Session) hangupAll(reason string) {
	r := `SIP;cause=200;text="` + quotedText(reason) + `"`
	s.endRelay()
	s.stopMusic()
	if t := s.transfer; t != nil && t.leg != nil {
		t.leg.Bye(r)
	}
	if s.answered {
		s.a.Bye(r)
		s.b.Bye(r)
		return
	}
	if s.b != nil {
		s.b.CancelWithReason(r)
	}
	if strings.Contains(reason, "shutting down") {
		s.a.Respond(503, "Service Unavailable", nil, warning(reason), s.e.retryAfter())
		return
	}
	s.a.Respond(487, "Request Terminated", nil, gosip.NewHeader("Reason", r))
}

// quotedText makes s fit between the quotes of a header's quoted-string
// (RFC 3261 25.1): a reason may carry a party's number, which is the
// network's, so quotes and backslashes are escaped and control characters,
// CR and LF among them, dropped.
func quotedText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s))
}
