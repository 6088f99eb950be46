package session

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// A REFER a party sends in its call (RFC 3515): a phone's own transfer.
// callctl performs it with the machinery of a client's transfer (the
// transfer struct, TRANSFER_REQUESTED → TRANSFERRING, TransferInfo and the
// fallback leg of startFallback): the referrer is the transferor, the
// other party the transferee. callctl answers 202, dials the Refer-To
// target itself and bridges it to the transferee, and reports the target's
// progress to the referrer in NOTIFYs of the REFER's implicit subscription
// (RFC 3515 2.4.4-2.4.7, RFC 6665). A Refer-To with Replaces naming the
// referrer's dialog in another call (an attended transfer, RFC 3891) joins
// the other parties of the two calls instead (join.go).

// partyRefer is a party's REFER that callctl performs.
type partyRefer struct {
	seq      uint32 // the REFER's CSeq: the subscription's id (RFC 3515 2.4.6)
	referrer *sip.Leg
	queue    []referNotifyMsg // NOTIFYs not sent yet
	sending  bool             // one is waiting for its answer
	final    bool             // the terminating NOTIFY was sent
	left     bool             // the referrer sent BYE meanwhile
	replaces *dialogID
	join     *Session // the other call of a Replaces
	// relay: the REFER went on to the transferee (calls.party_refer:
	// relay); pending is the referrer's REFER until it is answered with
	// the transferee's answer.
	relay bool
	// noSub: the REFER said Refer-Sub: false (RFC 4488 4): no NOTIFYs.
	noSub   bool
	pending *sip.Request
}

// endPartyRefer, as the session stops, answers a referrer's REFER still
// waiting (487, RFC 3261 15.1.2) and hangs up a referrer still in the call
// (a relayed transfer that completed ends before the final NOTIFY's answer
// comes, which would have hung it up).
func (s *Session) endPartyRefer(p *partyRefer) {
	if p.pending != nil {
		p.pending.Respond(487, "Request Terminated", nil)
		p.pending = nil
	}
	if !p.left {
		p.referrer.Bye(`SIP;cause=200;text="transferred"`)
	}
}

// referSubHeader echoes Refer-Sub: false in the 202 when the referrer asked
// for no subscription (RFC 4488 4: the 2xx says whether one was created).
func (p *partyRefer) referSubHeader() []gosip.Header {
	if !p.noSub {
		return nil
	}
	return []gosip.Header{gosip.NewHeader("Refer-Sub", "false")}
}

// answerReferrer answers the referrer's relayed REFER, once.
func (s *Session) answerReferrer(p *partyRefer, status int, reason string) {
	if p.pending == nil {
		return
	}
	if status >= 300 {
		p.final = true // a refused REFER has no subscription (RFC 3515 2.4.2)
		p.pending.Respond(status, sipfragReason(reason), nil)
	} else {
		p.pending.Respond(202, "Accepted", nil, p.referSubHeader()...)
	}
	p.pending = nil
}

// referNotify tags a NOTIFY sent to a referrer: its answer lets the next
// one go, or (bye) callctl hang the referrer up after it heard the outcome.
type referNotify struct {
	p   *partyRefer
	bye bool
}

// partyOp is the operation a party's REFER runs as: client operations
// queue behind it as behind a client's transfer, and its outcome is
// reported the same way (an OPERATION event blindTransfer).
func partyOp(transferor, target string) *activeOp {
	return &activeOp{req: &opRequest{name: "blindTransfer", reply: make(chan error, 1),
		args: map[string]string{"transferor": transferor, "target": target, "by": "REFER"}},
		pending: map[*sip.Leg]bool{}, results: map[*sip.Leg]int{}, reasons: map[*sip.Leg]string{}, offers: map[*sip.Leg][]byte{}}
}

// The calls.party_refer policies.
const (
	PartyReferPerform = "perform"
	PartyReferRelay   = "relay"
	PartyReferRefuse  = "refuse"
)

func (s *Session) onPartyRefer(ev *sip.Request) {
	if s.e.cfg.PartyRefer == PartyReferRefuse {
		ev.Respond(403, "Forbidden", nil, warning("REFER from a party is refused by policy (calls.party_refer: refuse)"))
		return
	}
	// RFC 3515 2.4.1: exactly one Refer-To, else 400.
	hs := ev.Request.GetHeaders("Refer-To")
	if len(hs) != 1 {
		ev.Respond(400, "Bad Request", nil, warning(fmt.Sprintf("REFER needs exactly one Refer-To (it has %d)", len(hs))))
		return
	}
	rt, err := parseReferTo(hs[0].Value())
	if err != nil {
		ev.Respond(400, "Bad Request", nil, warning(err.Error()))
		return
	}
	if !s.answered || s.op != nil || s.transfer != nil || s.relay != nil || len(s.inviting) > 0 ||
		!slices.Contains(transferStates, s.state()) {
		// Another operation or offer/answer is under way; the party may
		// try again (as for a re-INVITE, RFC 3261 14.2).
		ev.Respond(491, "Request Pending", nil, warning("the call is busy with "+s.busyWith()))
		return
	}
	referrer := ev.Leg
	number := s.snap.Caller.Number
	if referrer == s.b {
		number = s.snap.Callee.Number
	}
	t := &transfer{target: rt.number, prev: s.state(), transferor: referrer, transferee: s.other(referrer),
		party: &partyRefer{seq: ev.Request.CSeq().SeqNo, referrer: referrer, replaces: rt.replaces}}
	if rs := ev.Request.GetHeader("Refer-Sub"); rs != nil && strings.EqualFold(strings.TrimSpace(rs.Value()), "false") {
		t.party.noSub = true
	}
	if rt.replaces == nil {
		// The same checks as a client's transfer target (targets.go): a
		// number through the routing table, refused before the 202.
		uri, transport, oe := s.e.resolve("blindTransfer", rt.number)
		if oe != nil {
			ev.Respond(403, "Forbidden", nil, warning("Refer-To target refused: "+oe.Msg))
			return
		}
		t.uri, t.transport = uri, transport
	}
	if rt.replaces == nil && s.e.cfg.PartyRefer == PartyReferRelay {
		// Relayed: a client's blindTransfer with the referrer as
		// transferor, its REFER answered with the transferee's answer.
		// (A Replaces names a dialog of callctl's, which only callctl can
		// act on: it is performed whatever the policy.)
		t.party.pending, t.party.relay = ev, true
		s.op = partyOp(number, rt.number)
		s.startTransferWith(number, rt.number, t.party)
		if s.transfer == nil || s.transfer.party != t.party {
			s.answerReferrer(t.party, 403, "Forbidden") // refused before any REFER went out
		}
		return
	}
	ev.Respond(202, "Accepted", nil, t.party.referSubHeader()...) // RFC 3515 2.4.2
	s.transferGen++
	t.gen = s.transferGen
	s.transfer = t
	s.op = partyOp(number, rt.number)
	s.setTransferInfo(&TransferInfo{Transferor: number, Target: rt.number, Progress: "REFER from the " + s.partyName(referrer)})
	s.transition(TransferRequested, fmt.Sprintf("REFER from the %s: transfer of the %s to %s", s.partyName(referrer), s.partyName(t.transferee), rt.number))
	// RFC 3515 2.4.4: the first NOTIFY follows the 202 at once.
	s.notifyReferrer(t, 100, "Trying")
	s.after(s.e.cfg.TransferTimeout, transferTimeout{gen: t.gen})
	if rt.replaces != nil {
		s.startJoin(t)
		return
	}
	s.startFallback("REFER from the " + s.partyName(referrer))
}

// busyWith names what keeps the call from taking a REFER now.
func (s *Session) busyWith() string {
	switch {
	case s.op != nil:
		return "the operation " + s.op.req.name
	case s.transfer != nil:
		return "a transfer"
	case s.relay != nil || len(s.inviting) > 0:
		return "an offer/answer"
	}
	return "state " + string(s.state())
}

// notifyReferrer sends a NOTIFY of the REFER's subscription to the referrer
// with the target's status as message/sipfrag (RFC 3515 2.4.5); a final
// status terminates the subscription (RFC 3515 2.4.7, RFC 6665 4.2.2).
func (s *Session) notifyReferrer(t *transfer, status int, reason string) {
	s.notifyReferrerBye(t, status, reason, false)
}

// notifyReferrerBye is notifyReferrer; with bye, callctl hangs the referrer
// up once it answered the NOTIFY. NOTIFYs go one at a time, each after the
// previous one's answer: sent in parallel a 100 and a final one could
// overtake each other (RFC 6665 4.1.2.4 wants them in order).
func (s *Session) notifyReferrerBye(t *transfer, status int, reason string, bye bool) {
	p := t.party
	if p == nil {
		return
	}
	// A relayed REFER not answered yet: a failure is its answer, anything
	// else means it was accepted (a NOTIFY may come before the 202).
	s.answerReferrer(p, status, reason)
	if p.left || p.final || p.noSub {
		p.final = p.final || status >= 200
		if bye && !p.left {
			p.queue = append(p.queue, referNotifyMsg{bye: true, noNotify: true})
			s.sendNextNotify(p)
		}
		return
	}
	final := status >= 200
	p.final = p.final || final
	p.queue = append(p.queue, referNotifyMsg{status: status, reason: reason, final: final, bye: bye})
	s.sendNextNotify(p)
}

// referNotifyMsg is a NOTIFY waiting to be sent to a referrer (or, with
// noNotify, just the BYE that follows the last one).
type referNotifyMsg struct {
	status     int
	reason     string
	final, bye bool
	noNotify   bool
}

func (s *Session) sendNextNotify(p *partyRefer) {
	for !p.sending && len(p.queue) > 0 {
		m := p.queue[0]
		p.queue = p.queue[1:]
		if p.left {
			continue
		}
		if m.noNotify {
			if m.bye {
				p.referrer.Bye(`SIP;cause=200;text="transferred"`)
			}
			continue
		}
		state := "active;expires=" + strconv.Itoa(int(s.e.cfg.TransferTimeout.Seconds())+1)
		if m.final {
			state = "terminated;reason=noresource"
		}
		frag := fmt.Sprintf("SIP/2.0 %d %s\r\n", m.status, sipfragReason(m.reason))
		_, err := p.referrer.Send(gosip.NOTIFY, "message/sipfrag;version=2.0", []byte(frag), referNotify{p: p, bye: m.bye},
			gosip.NewHeader("Event", "refer;id="+strconv.FormatUint(uint64(p.seq), 10)),
			gosip.NewHeader("Subscription-State", state))
		if err != nil {
			s.log.Info("cannot NOTIFY the referrer", zap.Error(err))
			if m.bye {
				p.referrer.Bye(`SIP;cause=200;text="transferred"`)
			}
			continue
		}
		p.sending = true
	}
}

// onReferNotifyResult sends the next NOTIFY, or hangs the referrer up once
// it answered the final NOTIFY of a transfer that succeeded (after it heard
// the outcome, as a phone expects, RFC 5589 6).
func (s *Session) onReferNotifyResult(ev *sip.Result, tag referNotify) {
	if ev.Status >= 300 {
		s.log.Info("the referrer refused a NOTIFY", zap.Int("status", ev.Status))
	}
	p := tag.p
	p.sending = false
	if tag.bye && !p.left {
		ev.Leg.Bye(`SIP;cause=200;text="transferred"`)
	}
	s.sendNextNotify(p)
}

// sipfragReason makes a peer's reason phrase fit a sipfrag status line: no
// control characters (CR and LF would end the line), at most 100 bytes.
func sipfragReason(r string) string {
	r = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, r)
	if len(r) > 100 {
		r = r[:100]
	}
	if strings.TrimSpace(r) == "" {
		return "Unknown"
	}
	return r
}

// referFailStatus is the status a failed party transfer reports to the
// referrer: the target's own (with its reason phrase when callctl has it),
// else what the failure means.
func referFailStatus(err *OpError, reason string) (int, string) {
	switch {
	case err.Status >= 300 && err.Status <= 699:
		if reason == "" {
			reason = "Failed"
		}
		return err.Status, reason
	case err.Code == CodeTimeout:
		return 408, "Request Timeout"
	}
	return 503, "Service Unavailable"
}

// referrerLeft: the referrer hung up while callctl connects the target; a
// transferor may leave once its REFER is accepted (RFC 5589 6), so the
// transfer goes on for the transferee.
func (s *Session) referrerLeft(t *transfer) {
	t.party.left = true
	t.party.queue = nil
	s.transferProgress("the "+s.partyName(t.transferor)+" left the call; callctl goes on connecting the target", 0)
}

// afterFailedPartyRefer ends the call when the referrer left before the
// transfer failed: the transferee would otherwise stay with nobody.
func (s *Session) afterFailedPartyRefer(t *transfer) {
	if t.party == nil || !t.party.left {
		return
	}
	t.transferee.Bye(`SIP;cause=200;text="transfer failed; the transferor had hung up"`)
	s.end(s.hungUpState(t.transferor), "the "+s.partyName(t.transferor)+" hung up and the transfer it asked for failed")
}

// resumeIfHeld re-INVITEs party l with sendrecv when the party that just
// left held it: a phone usually holds the other party before it transfers
// it, and the target must be heard.
func (s *Session) resumeIfHeld(l *sip.Leg, held bool) {
	if !held || l.Ended() {
		return
	}
	body, err := s.offerWithDirection(l, media.SendRecv)
	if err != nil {
		s.log.Warn("cannot resume the transferred party", zap.Error(err))
		return
	}
	s.sendReinvite(l, body, inviteRollback)
}
