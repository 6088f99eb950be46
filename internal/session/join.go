package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
)

// An attended transfer done by a phone (RFC 3891 with RFC 3515): the phone P
// talks to A in session S and to C in session O, both through callctl, and
// sends in S a REFER whose Refer-To carries Replaces naming its dialog in O.
// callctl joins A and C itself: O hands its leg to C (leg, endpoint, SDP
// state) to S, hangs P up and ends TRANSFER_COMPLETED; S bridges A to C in
// P's place (as its fallback bridges a target), NOTIFYs P 200 and hangs it
// up, and goes on IN_CALL. The two sessions only talk through their queues.

// joinRequest asks session O for the other party of the dialog id names.
type joinRequest struct {
	from *Session
	gen  int
	id   dialogID
	// codec is what S's remaining party speaks (ok false: unknown).
	codec   media.Codec
	codecOK bool
}

// joinHandoff is O's answer: the party that now belongs to S.
type joinHandoff struct {
	from *Session
	gen  int
	r    replacement
}

// joinRefused is O's refusal, with the status S reports to the referrer.
type joinRefused struct {
	gen    int
	status int
	reason string
	why    string
}

// byCallID is the live session, other than self, one of whose legs has
// Call-ID callID.
func (r *Registry) byCallID(callID string, self *Session) *Session {
	for _, o := range r.liveSessions() {
		if o == self {
			continue
		}
		snap := o.Snapshot()
		if snap.Caller.CallID == callID || snap.Callee.CallID == callID {
			return o
		}
	}
	return nil
}

// startJoin runs in S: it asks the session holding the dialog that the
// Replaces names for its other party.
func (s *Session) startJoin(t *transfer) {
	d := t.party.replaces
	o := s.e.reg.byCallID(d.callID, s)
	if o == nil {
		// callctl does not dial a Replaces it cannot match (a phone's
		// attended transfer to a call not through callctl): 481, as
		// RFC 3891 3 has a UA answer a Replaces naming no dialog.
		t.failReason = "Call/Transaction Does Not Exist"
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Status: 481,
			Msg: "the Replaces of the REFER names no call through callctl"})
		return
	}
	t.party.join = o
	s.transferProgress("joining with session "+o.id+" (Replaces)", 0)
	s.transition(Transferring, fmt.Sprintf("REFER with Replaces: the %s is to be joined with the other party of session %s", s.partyName(t.transferee), o.id))
	req := &joinRequest{from: s, gen: t.gen, id: *d}
	req.codec, req.codecOK = s.codecOf(t.transferee)
	if !o.q.push(req) {
		t.failReason = "Call/Transaction Does Not Exist"
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Status: 481, Msg: "session " + o.id + " of the Replaces has ended"})
	}
}

// tagsMatch reports whether a Replaces' tags are leg's, in either order:
// RFC 3891 3 reads them as the receiver of the header sees the dialog, and
// a referrer may write them as it sees it.
func tagsMatch(l *sip.Leg, d dialogID) bool {
	local, remote := l.Tags()
	return (d.toTag == local && d.fromTag == remote) || (d.toTag == remote && d.fromTag == local)
}

// onJoinRequest runs in O: it hands its other party to S, hangs up the
// referrer and ends TRANSFER_COMPLETED, or refuses.
func (s *Session) onJoinRequest(req *joinRequest) {
	refuse := func(status int, reason, why string) {
		req.from.post(&joinRefused{gen: req.gen, status: status, reason: reason, why: why})
	}
	var referrer *sip.Leg
	for _, l := range []*sip.Leg{s.a, s.b} {
		if l != nil && l.CallID() == req.id.callID && tagsMatch(l, req.id) {
			referrer = l
		}
	}
	switch {
	case referrer == nil || s.state().Ended():
		refuse(481, "Call/Transaction Does Not Exist", "the Replaces names no dialog of session "+s.id)
		return
	case req.id.earlyOnly:
		// RFC 3891 3: early-only and a confirmed dialog: 486.
		refuse(486, "Busy Here", "the Replaces is early-only and the call of session "+s.id+" is answered")
		return
	case !s.answered || s.op != nil || s.transfer != nil || s.relay != nil || len(s.inviting) > 0 ||
		!slices.Contains(transferStates, s.state()):
		refuse(491, "Request Pending", "session "+s.id+" is busy with "+s.busyWith())
		return
	}
	remaining := s.other(referrer)
	if c, ok := s.codecOf(remaining); ok && req.codecOK && !sameCodec(c, req.codec) {
		// callctl relays RTP as it is; it does not transcode.
		refuse(488, "Not Acceptable Here", fmt.Sprintf("the two calls use different codecs (%s/%d and %s/%d); callctl does not transcode",
			req.codec.Name, req.codec.ClockRate, c.Name, c.ClockRate))
		return
	}
	r := replacement{leg: remaining, ep: s.endpoint(remaining), writer: s.writer(remaining),
		held: (referrer == s.a && s.holdA) || (referrer == s.b && s.holdB)}
	referrerNumber := s.snap.Callee.Number
	if remaining == s.a {
		r.party, r.lastTo, r.raw, r.info, r.srtp = s.snap.Caller, s.lastToA, s.rawFromA, s.fromA, s.srtp.localA
	} else {
		r.party, r.lastTo, r.raw, r.info, r.srtp = s.snap.Callee, s.lastToB, s.rawFromB, s.fromB, s.srtp.localB
		referrerNumber = s.snap.Caller.Number
	}
	s.stopMusic()
	// Its events go to S from now on; before S has it, so that no answer
	// to a request S sends on it is lost.
	remaining.SetSink(req.from.sink)
	if !req.from.q.push(&joinHandoff{from: s, gen: req.gen, r: r}) {
		remaining.SetSink(s.sink) // S is gone: this call goes on as it was
		return
	}
	s.join.gone, s.join.to = remaining, req.from
	s.mu.Lock()
	if remaining == s.a {
		s.a, s.ea = nil, nil
	} else {
		s.b, s.eb = nil, nil
	}
	s.mu.Unlock()
	s.setTransferInfo(&TransferInfo{Transferor: referrerNumber, Target: r.party.Number,
		Progress: "joined with session " + req.from.id + " (Replaces)", Status: 200})
	why := fmt.Sprintf("REFER with Replaces in session %s named the dialog of %s here", req.from.id, referrerNumber)
	s.transition(TransferRequested, why)
	s.transition(Transferring, why)
	s.transition(TransferCompleted, fmt.Sprintf("%s was joined with the call of session %s; callctl hung up %s", r.party.Number, req.from.id, referrerNumber))
	referrer.Bye(`SIP;cause=200;text="transferred"`)
	s.publishOp("transferCompleted", map[string]string{"target": r.party.Number, "by": "callctl", "session": req.from.id}, "ok", "")
	s.finished = true
}

// codecOf is the codec party l speaks with the other party: the first of
// its last SDP that the other party's last SDP also has (RFC 3264 6.1).
func (s *Session) codecOf(l *sip.Leg) (media.Codec, bool) {
	mine, theirs := s.fromA, s.fromB
	if l == s.b {
		mine, theirs = s.fromB, s.fromA
	}
	return usedCodec(mine, theirs)
}

func usedCodec(mine, theirs media.MediaInfo) (media.Codec, bool) {
	for _, c := range mine.Codecs {
		if strings.EqualFold(c.Name, "telephone-event") || c.Name == "" {
			continue
		}
		for _, o := range theirs.Codecs {
			if sameCodec(c, o) {
				return c, true
			}
		}
	}
	return media.Codec{}, false
}

// sameCodec: the same encoding, clock rate and payload type (RTP passes
// through unchanged, so the payload type must match too).
func sameCodec(a, b media.Codec) bool {
	return strings.EqualFold(a.Name, b.Name) && a.ClockRate == b.ClockRate && a.PayloadType == b.PayloadType
}

// joinHandover covers the instant a party changes calls: its leg's events
// go to S from the moment O switches its sink, which is before S has
// handled the handoff, and events O still had queued for it come after.
type joinHandover struct {
	gone   *sip.Leg    // in O: the party handed to S
	to     *Session    // in O: S
	parked []sip.Event // in S: the party's events that came before the handoff
}

// joinEvent takes the events of a party between two calls (reporting
// true): O passes on those of the party it handed away; S keeps those of
// a leg not yet its own while it waits for a handoff, and handles them
// once the party is its own (onJoinHandoff).
func (s *Session) joinEvent(ev sip.Event) bool {
	l := sip.LegOf(ev)
	if l == nil {
		return false
	}
	if s.join.gone == l {
		s.join.to.sink(ev)
		return true
	}
	t := s.transfer
	if t == nil || t.party == nil || t.party.join == nil || l == s.a || l == s.b || l == t.leg {
		return false
	}
	if len(s.join.parked) < maxParkedJoinEvents {
		s.join.parked = append(s.join.parked, ev)
	}
	return true
}

// maxParkedJoinEvents bounds what S keeps of a party's events while it
// waits for the handoff (the instant between two queues: a handful).
const maxParkedJoinEvents = 32

// onJoinHandoff runs in S: the other call's party takes the referrer's place.
func (s *Session) onJoinHandoff(h *joinHandoff) {
	t := s.transfer
	if t == nil || t.party == nil || t.party.join != h.from || t.gen != h.gen {
		// S gave up meanwhile (timeout, hangup): the party has no call.
		s.join.parked = nil
		h.r.leg.SetSink(nil)
		h.r.leg.Bye(`SIP;cause=480;text="transfer abandoned"`)
		h.r.ep.Close()
		return
	}
	s.replaceTransferor(t, h.r)
	parked := s.join.parked
	s.join.parked = nil
	for _, ev := range parked {
		s.handle(ev)
	}
	s.transferProgress("joined with "+h.r.party.Number+" of session "+h.from.id, 200)
	s.transition(InCall, fmt.Sprintf("REFER with Replaces: callctl joined the %s with %s of session %s", s.partyName(t.transferee), h.r.party.Number, h.from.id))
	s.publishOp("transferCompleted", map[string]string{"target": t.target, "by": "callctl", "replaces": h.from.id}, "ok", "")
	s.finishOp(nil)
}

func (s *Session) onJoinRefused(r *joinRefused) {
	t := s.transfer
	if t == nil || t.party == nil || t.gen != r.gen {
		return
	}
	t.failReason = r.reason
	s.join.parked = nil
	s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Status: r.status, Msg: r.why})
}
