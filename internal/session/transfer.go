package session

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/callctl/callctl/internal/listen"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// TransferInfo describes a blind transfer or forward in progress.
type TransferInfo struct {
	Transferor string `json:"transferor,omitempty"`
	Target     string `json:"target"`
	// Progress is the latest news: "REFER sent", "202 Accepted", the
	// sipfrag status line of a NOTIFY, or "callctl connecting the target".
	Progress string `json:"progress,omitempty"`
	Status   int    `json:"status,omitempty"`
}

// transfer is a blind transfer in progress (RFC 3515 REFER, or callctl
// connecting the target itself).
type transfer struct {
	gen        int
	transferor *sip.Leg
	transferee *sip.Leg
	target     string
	uri        gosip.Uri
	transport  string
	prev       State
	referSeq   uint32
	completed  bool // TRANSFER_COMPLETED; waiting for the old dialog to end
	// transfereeLeft: the transferee sent BYE before callctl knew whether
	// it accepted REFER; the REFER's answer decides the outcome.
	transfereeLeft bool
	// party: a REFER from the transferor itself (party_refer.go), nil
	// for a client's transfer.
	party *partyRefer
	// failReason is the target's reason phrase of a failure, for the
	// referrer's NOTIFY.
	failReason string

	// Fallback: callctl's own leg to the target, and the SRTP offered it
	// (srtpOfferForTarget).
	leg         *sip.Leg
	ep          *media.Endpoint
	writer      *media.SDPWriter
	offer       []byte
	srtpMode    SRTPOffer
	srtpOffered []media.Crypto
}

type referTag struct{ gen int }
type transferTimeout struct{ gen int }
type transferGrace struct{ gen int }

// resolve turns a target into a URI and transport: a dial string through
// the routing table (the trunk by default), a SIP URI as given. It checks
// the target against the policy again, right before anything is sent, so
// no path reaches the wire with a target the policy refuses.
func (e *Engine) resolve(op, target string) (gosip.Uri, string, *OpError) {
	t, oe := e.checkTarget(op, "target", target)
	if oe != nil {
		return gosip.Uri{}, "", oe
	}
	if t.URI == nil {
		u, tp, err := e.target(t.Number)
		if err != nil {
			return u, "", invalidArg(op, "target", fmt.Sprintf("target %q: %v", target, err))
		}
		return u, tp, nil
	}
	tp := e.cfg.TrunkTransport
	if v, ok := t.URI.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToLower(v)
	}
	return *t.URI, tp, nil
}

func (s *Session) legOf(number string) *sip.Leg {
	if number == s.snap.Caller.Number {
		return s.a
	}
	return s.b
}

func (s *Session) startTransfer(transferorNumber, target string) {
	s.startTransferWith(transferorNumber, target, nil)
}

// startTransferWith is startTransfer; party is a referrer's REFER relayed
// to the transferee (party_refer.go), nil for a client's transfer.
func (s *Session) startTransferWith(transferorNumber, target string, party *partyRefer) {
	if !s.requireState(transferStates) {
		return
	}
	uri, transport, oe := s.e.resolve(s.opName(), target)
	if oe != nil {
		s.finishOp(oe)
		return
	}
	s.transferGen++
	t := &transfer{gen: s.transferGen, target: target, uri: uri, transport: transport, prev: s.state(), party: party}
	t.transferor = s.legOf(transferorNumber)
	t.transferee = s.other(t.transferor)
	s.transfer = t
	s.setTransferInfo(&TransferInfo{Transferor: transferorNumber, Target: target, Progress: "REFER sent"})
	s.transition(TransferRequested, fmt.Sprintf("transfer of the %s to %s requested by %s", s.partyName(t.transferee), target, transferorNumber))

	referredBy := gosip.Uri{Scheme: "sip", User: transferorNumber, Host: s.e.agent.Host()}
	seq, err := t.transferee.Send(gosip.REFER, "", nil, referTag{gen: t.gen},
		gosip.NewHeader("Refer-To", "<"+uri.String()+">"),
		gosip.NewHeader("Referred-By", "<"+referredBy.String()+">"))
	if err != nil {
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: "cannot send REFER: " + err.Error()})
		return
	}
	t.referSeq = seq
	s.after(s.e.cfg.TransferTimeout, transferTimeout{gen: t.gen})
}

func (s *Session) setTransferInfo(ti *TransferInfo) {
	s.mu.Lock()
	s.snap.Transfer = ti
	s.mu.Unlock()
}

func (s *Session) transferProgress(text string, status int) {
	s.mu.Lock()
	if s.snap.Transfer != nil {
		ti := *s.snap.Transfer
		ti.Progress, ti.Status = text, status
		s.snap.Transfer = &ti
	}
	s.mu.Unlock()
	s.publishOp("transferProgress", map[string]string{"progress": text}, "progress", "")
}

// onReferResult handles the transferee's answer to REFER. It may come after
// the NOTIFYs it starts (a UAS may send the first NOTIFY before the 202,
// RFC 3515 2.4.4, and UDP or goroutines may reorder them), after the
// transfer completed, or after the transferee's BYE.
func (s *Session) onReferResult(ev *sip.Result, tag referTag) {
	t := s.transfer
	if t == nil || t.gen != tag.gen || t.completed {
		return
	}
	reason := reasonOf(ev.Response, ev.Status)
	accepted := ev.Status >= 200 && ev.Status < 300
	if t.transfereeLeft {
		if accepted {
			// The transferee accepted and has already left the old call
			// (RFC 5589 6): the transfer is under way without callctl.
			s.transferProgress(fmt.Sprintf("%d %s", ev.Status, reason), ev.Status)
			s.acceptRefer(fmt.Sprintf("REFER accepted (%d) after the transferee's BYE", ev.Status))
			s.completeTransfer(fmt.Sprintf("the %s accepted REFER (%d) and left the call", s.partyName(t.transferee), ev.Status))
			return
		}
		// It refused and hung up: the call is over, not transferred.
		if t.party != nil {
			s.answerReferrer(t.party, ev.Status, reason)
		}
		s.transfer = nil
		t.transferor.Bye(`SIP;cause=200;text="peer hung up"`)
		s.finishOp(peerRefused(s.opName(), s.partyName(t.transferee), ev.Status, reason+" (and it hung up)"))
		s.end(s.hungUpState(t.transferee), s.partyName(t.transferee)+" sent BYE during the transfer")
		return
	}
	switch {
	case accepted:
		if t.party != nil {
			s.answerReferrer(t.party, ev.Status, reason)
		}
		// RFC 3515 2.4.2: 202 only says the REFER was accepted; the
		// outcome comes in NOTIFY. A NOTIFY may already have said more.
		if s.state() == TransferRequested {
			s.transferProgress(fmt.Sprintf("%d %s", ev.Status, reason), ev.Status)
		}
		s.acceptRefer(fmt.Sprintf("REFER accepted (%d); waiting for NOTIFY", ev.Status))
	case t.party != nil:
		// A relayed REFER: the transferee's refusal is the referrer's
		// answer; callctl does not fall back to dialling (perform does).
		s.failTransfer(peerRefused(s.opName(), s.partyName(t.transferee), ev.Status, reason))
	case fallbackStatus(ev.Status) && s.e.cfg.TransferFallback:
		s.log.Info("REFER not supported; connecting the target itself", zap.Int("status", ev.Status))
		s.startFallback(fmt.Sprintf("REFER not supported (%d %s)", ev.Status, reason))
	case ev.Status == 408:
		s.failTransfer(timeout(s.opName(), "the "+s.partyName(t.transferee)+" did not answer REFER"))
	default:
		// 603 Decline, 486 Busy Here, 403 …: a refusal, which callctl
		// respects (no fallback).
		s.failTransfer(peerRefused(s.opName(), s.partyName(t.transferee), ev.Status, reason))
	}
}

// fallbackStatus reports whether a REFER's answer says the transferee does
// not do REFER at all (405 Method Not Allowed, 501 Not Implemented, 420 Bad
// Extension), the only case where callctl connects the target itself. Any
// other refusal (603, 486, 403, …) is the transferee's decision.
func fallbackStatus(status int) bool {
	return status == 405 || status == 501 || status == 420
}

// acceptRefer moves TRANSFER_REQUESTED to TRANSFERRING once the transferee
// has shown it accepted REFER: by its 2xx, or by a NOTIFY of the REFER's
// subscription, which may arrive first.
func (s *Session) acceptRefer(why string) {
	if s.state() == TransferRequested {
		s.transition(Transferring, why)
	}
}

// hungUpState is the end of a call that party l left by BYE.
func (s *Session) hungUpState(l *sip.Leg) State {
	if l == s.a {
		return CallerHungUp
	}
	return CalleeHungUp
}

// onNotify handles a NOTIFY of the REFER's implicit subscription
// (RFC 3515 2.4.4, RFC 6665): message/sipfrag with the target's status.
func (s *Session) onNotify(ev *sip.Request) {
	t := s.transfer
	req := ev.Request
	evHdr := req.GetHeader("Event")
	if t == nil || ev.Leg != t.transferee || evHdr == nil || !isReferEvent(evHdr.Value(), t.referSeq) {
		ev.Respond(481, "Subscription Does Not Exist", nil)
		return
	}
	ev.Respond(200, "OK", nil)
	if t.completed || t.leg != nil {
		return
	}
	// A NOTIFY of this REFER's subscription means the transferee accepted
	// it, whether or not its 202 has been handled yet (RFC 3515 2.4.4).
	s.acceptRefer("NOTIFY of the REFER subscription: REFER accepted")
	status, line := parseSipfrag(req.Body())
	terminated := false
	if ss := req.GetHeader("Subscription-State"); ss != nil {
		terminated = strings.HasPrefix(strings.ToLower(strings.TrimSpace(ss.Value())), "terminated")
	}
	if t.party != nil && status >= 100 {
		// A relayed REFER: the transferee's news goes on to the referrer.
		s.notifyReferrer(t, status, strings.TrimSpace(strings.TrimPrefix(line, strconv.Itoa(status))))
	}
	switch {
	case status >= 200 && status < 300:
		s.transferProgress(line, status)
		s.completeTransfer(line)
	case status >= 300:
		s.transferProgress(line, status)
		s.failTransfer(peerRefused(s.opName(), "transfer target "+t.target, status, strings.TrimSpace(strings.TrimPrefix(line, strconv.Itoa(status)))))
	case status >= 100:
		s.transferProgress(line, status)
		if terminated {
			s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: "the transferee ended the REFER subscription without a final status (last: " + line + ")"})
		}
	case terminated:
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: "the transferee ended the REFER subscription without a final status"})
	}
}

// isReferEvent matches "refer" or "refer;id=N" (RFC 3515 2.4.6).
func isReferEvent(v string, seq uint32) bool {
	parts := strings.Split(v, ";")
	if !strings.EqualFold(strings.TrimSpace(parts[0]), "refer") {
		return false
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "id") && strings.TrimSpace(val) != strconv.FormatUint(uint64(seq), 10) {
			return false
		}
	}
	return true
}

// parseSipfrag reads the status line of a message/sipfrag body (RFC 3420).
func parseSipfrag(body []byte) (int, string) {
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.TrimSpace(line)
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(strings.ToUpper(f[0]), "SIP/") {
		return 0, line
	}
	// RFC 3261 7.2: Status-Code is 3DIGIT; 1xx-6xx are the classes there are.
	code, err := strconv.Atoi(f[1])
	if err != nil || len(f[1]) != 3 || code < 100 || code > 699 {
		return 0, line
	}
	return code, strings.Join(f[1:], " ")
}

// completeTransfer: the transferee reached the target. The transferor's leg
// gets BYE; the transferee's too if its side has not ended it in the grace
// time. The state changes first: nothing is marked or sent unless the
// table allowed TRANSFER_COMPLETED.
func (s *Session) completeTransfer(why string) {
	t := s.transfer
	s.acceptRefer("REFER accepted: " + why)
	if !s.transition(TransferCompleted, "transferee reached the target: "+why) {
		s.failTransfer(&OpError{Code: CodeWrongState, Op: s.opName(), State: s.state(),
			Msg: "the transfer completed in state " + string(s.state()) + ", which cannot end it"})
		return
	}
	t.completed = true
	s.stopMusic()
	if t.party != nil {
		// A relayed REFER: the referrer hears the outcome first.
		s.notifyReferrerBye(t, 200, "OK", true)
	} else {
		t.transferor.Bye(`SIP;cause=200;text="transferred"`)
	}
	s.finishOp(nil)
	if t.transfereeLeft {
		s.finished = true
		return
	}
	s.after(s.e.cfg.TransferGrace, transferGrace{gen: t.gen})
}

func (s *Session) onTransferGrace(tag transferGrace) {
	t := s.transfer
	if t == nil || t.gen != tag.gen || !t.completed {
		return
	}
	t.transferee.Bye(`SIP;cause=200;text="transferred"`)
	s.finished = true
}

func (s *Session) onTransferTimeout(tag transferTimeout) {
	t := s.transfer
	if t == nil || t.gen != tag.gen || t.completed {
		return
	}
	if t.transfereeLeft {
		// The transferee hung up and never answered REFER: the call is
		// over, not transferred.
		s.transfer = nil
		t.transferor.Bye(`SIP;cause=200;text="peer hung up"`)
		s.finishOp(timeout(s.opName(), "the "+s.partyName(t.transferee)+" hung up and never answered REFER"))
		s.end(s.hungUpState(t.transferee), s.partyName(t.transferee)+" sent BYE during the transfer")
		return
	}
	s.failTransfer(timeout(s.opName(), fmt.Sprintf("no final NOTIFY within %s", s.e.cfg.TransferTimeout)))
}

// failTransfer puts the call back where it was: TRANSFER_FAILED, then the
// previous state; the parties are still connected.
func (s *Session) failTransfer(err *OpError) {
	t := s.transfer
	s.transfer = nil
	if t.leg != nil {
		t.leg.SetSink(nil)
		t.leg.Bye("")
		t.ep.Close()
	}
	status, reason := referFailStatus(err, t.failReason)
	s.notifyReferrer(t, status, reason) // RFC 3515 2.4.5: the final status
	s.transferProgress(err.Msg, err.Status)
	s.transition(TransferFailed, err.Error())
	s.transition(t.prev, "transfer failed; call restored")
	s.finishOp(err)
	s.afterFailedPartyRefer(t)
}

// startFallback connects the target itself: a new leg offered the
// transferee's own media, so the transferee's RTP can be bridged to it
// without a re-INVITE.
func (s *Session) startFallback(why string) {
	t := s.transfer
	raw := s.rawFromA
	if t.transferee == s.b {
		raw = s.rawFromB
	}
	body, err := media.SetDirection(raw, media.SendRecv)
	if err != nil {
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: why + "; cannot offer the transferee's media: " + err.Error()})
		return
	}
	ep, err := s.e.ports.Allocate(s.e.endpointConfig(s.log))
	if err != nil {
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: why + "; no RTP ports: " + err.Error()})
		return
	}
	t.ep, t.writer = ep, media.NewSDPWriter("callctl")
	// The target's leg is SRTP or RTP by its own route, whatever the
	// transferee's leg is (callctl re-encrypts).
	t.srtpMode = s.e.srtpOfferForTarget(t.target, t.uri)
	if t.srtpOffered, err = s.e.offerSRTP(t.writer, t.srtpMode); err == nil {
		t.offer, err = t.writer.Rewrite(body, ep.Advertise(), ep.Port())
	}
	if err != nil {
		ep.Close()
		t.ep = nil
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: why + "; " + err.Error()})
		return
	}
	from := s.snap.Caller
	if t.transferee == s.b {
		from = s.snap.Callee
	}
	leg, err := s.e.agent.Dial(sip.DialOptions{Target: t.uri, Transport: t.transport, FromUser: from.Number, FromName: from.DisplayName, Body: t.offer}, s.sink)
	if err != nil {
		ep.Close()
		t.ep = nil
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: why + "; dialling the target: " + err.Error()})
		return
	}
	leg.SetLogger(s.e.log.WithLazy(zap.String("session", s.id)))
	t.leg = leg
	s.transferProgress(why+"; callctl is connecting the target", 0)
	s.transition(Transferring, why+"; callctl connects "+t.target+" itself")
}

func (s *Session) onFallbackAnswered(ev *sip.Answered) {
	t := s.transfer
	info, err := media.ParseSDP(ev.Response.Body())
	if err != nil {
		s.refuseFallbackAnswer(ev.Leg, "bad SDP", "the transfer target answered with bad SDP: "+err.Error())
		return
	}
	local, err := answerSRTP(t.ep, t.writer, t.srtpMode, t.srtpOffered, info)
	if err != nil {
		s.refuseFallbackAnswer(ev.Leg, "SRTP", "the transfer target's answer: "+err.Error())
		return
	}
	t.ep.SetRemote(info.Remote, info.RTCP)
	party := Party{Number: t.uri.User, LegID: ev.Leg.ID(), CallID: ev.Leg.CallID()}
	if to := ev.Response.To(); to != nil {
		party.DisplayName = to.DisplayName
	}
	s.replaceTransferor(t, replacement{leg: ev.Leg, ep: t.ep, writer: t.writer, lastTo: t.offer, party: party,
		info: info, raw: ev.Response.Body(), srtp: local})
	s.transferProgress("target answered; callctl bridged it", 200)
	// The call goes on with the target: the session stays live, straight
	// from TRANSFERRING to IN_CALL (never through the ended
	// TRANSFER_COMPLETED); the operation's own event says it succeeded.
	s.transition(InCall, "callctl connected the transfer target "+t.target)
	s.publishOp("transferCompleted", map[string]string{"target": t.target, "by": "callctl"}, "ok", "")
	s.finishOp(nil)
}

// replacement is the leg that takes the transferor's place: callctl's own
// leg to the target, or the other party of a joined call (join.go).
type replacement struct {
	leg    *sip.Leg
	ep     *media.Endpoint
	writer *media.SDPWriter
	lastTo []byte // the SDP callctl last sent it
	party  Party
	info   media.MediaInfo
	raw    []byte // the SDP it last sent
	// held: the party that left had put it on hold (join.go).
	held bool
	// srtp is callctl's SRTP line in use toward it (join.go); zero for a
	// leg callctl dialled with plain RTP.
	srtp media.Crypto
}

// replaceTransferor bridges the transferee to r instead of the transferor,
// whose leg gets BYE (after the final NOTIFY, for a party's REFER) and
// whose endpoint closes.
func (s *Session) replaceTransferor(t *transfer, r replacement) {
	s.stopMusic()
	// A phone holds the other party before it transfers it: resumed below.
	heldByTransferor := (t.transferor == s.a && s.holdA) || (t.transferor == s.b && s.holdB)
	transfereeEp := s.endpoint(t.transferee)
	oldEp := s.endpoint(t.transferor)
	// The transferee keeps its endpoint and stream; only what feeds it
	// changes (media keeps sequence and timestamps continuous).
	media.Connect(transfereeEp, r.ep)
	if t.party != nil {
		s.notifyReferrerBye(t, 200, "OK", true)
	} else {
		t.transferor.Bye(`SIP;cause=200;text="transferred"`)
	}
	s.srtpLegReplaced(t.transferor == s.a)
	if t.transferor == s.a {
		s.srtp.localA = r.srtp
	} else {
		s.srtp.localB = r.srtp
	}
	s.mu.Lock()
	if t.transferor == s.a {
		s.a, s.ea, s.wa, s.lastToA = r.leg, r.ep, r.writer, r.lastTo
		s.snap.Caller = r.party
	} else {
		s.b, s.eb, s.wb, s.lastToB = r.leg, r.ep, r.writer, r.lastTo
		s.snap.Callee = r.party
	}
	s.mu.Unlock()
	s.setFrom(r.leg, r.info)
	s.setRawFrom(r.leg, r.raw)
	s.mapEvents()
	if lm := s.e.cfg.Listen; lm != nil && lm.Count(s.id) > 0 {
		party := "callee"
		if t.transferor == s.a {
			party = "caller"
		}
		if tr, err := listen.TrackFor(r.ep, r.info, r.info); err == nil {
			if err := lm.Rebind(s.id, party, tr); err != nil {
				s.log.Warn("listeners keep the old party's track", zap.Error(err))
			}
		}
	}
	oldEp.Close()
	s.transfer = nil
	s.holdA, s.holdB = false, false
	if t.party != nil {
		s.resumeIfHeld(t.transferee, heldByTransferor)
		s.resumeIfHeld(r.leg, r.held)
	}
}

// refuseFallbackAnswer hangs up a transfer target whose answer callctl
// cannot use (488, RFC 3261 15) and fails the transfer with msg.
func (s *Session) refuseFallbackAnswer(leg *sip.Leg, cause, msg string) {
	t := s.transfer
	leg.Bye(`SIP;cause=488;text="` + cause + `"`)
	t.leg = nil
	t.ep.Close()
	s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.opName(), Msg: msg})
}

func (s *Session) onFallbackFailed(ev *sip.Failed) {
	t := s.transfer
	t.leg = nil
	t.ep.Close()
	t.failReason = reasonOf(ev.Response, ev.Status)
	s.failTransfer(peerRefused(s.opName(), "transfer target "+t.target, ev.Status, reasonOf(ev.Response, ev.Status)))
}

// startForward: while ringing, cancel the callee's leg and ring target with
// the caller's offer; once answered, a blind transfer of the caller.
func (s *Session) startForward(target string) {
	if !s.requireState(forwardStates) {
		return
	}
	if s.answered {
		s.startTransfer(s.snap.Callee.Number, target)
		return
	}
	uri, transport, oe := s.e.resolve(s.opName(), target)
	if oe != nil {
		s.finishOp(oe)
		return
	}
	writer := media.NewSDPWriter("callctl")
	mode := s.e.srtpOfferForTarget(target, uri)
	offered, err := s.e.offerSRTP(writer, mode)
	var offer []byte
	if err == nil {
		offer, err = writer.Rewrite(s.a.Invite().Body(), s.eb.Advertise(), s.eb.Port())
	}
	if err != nil {
		s.finishOp(&OpError{Code: CodeInvalidArgument, Op: "forward", Msg: err.Error()})
		return
	}
	old := s.b
	old.SetSink(nil)
	old.Cancel()
	s.eb.SetRemote(netip.AddrPort{}, netip.AddrPort{})
	inv := s.a.Invite()
	leg, err := s.e.agent.Dial(sip.DialOptions{Target: uri, Transport: transport, FromUser: s.snap.Caller.Number,
		FromName: s.snap.Caller.DisplayName, Body: offer, MaxForwards: maxForwards(inv)}, s.sink)
	if err != nil {
		s.a.Respond(480, "Temporarily Unavailable", nil, warning("forward failed: "+err.Error()))
		s.end(Error, "forward to "+target+" failed: "+err.Error())
		s.finishOp(&OpError{Code: CodePeerRefused, Op: "forward", Msg: "dialling " + target + ": " + err.Error()})
		return
	}
	leg.SetLogger(s.e.log.WithLazy(zap.String("session", s.id)))
	s.srtpLegReplaced(false)
	s.srtpNewCallee(mode, offered)
	s.b, s.wb, s.lastToB = leg, writer, offer
	s.mu.Lock()
	s.snap.Callee = Party{Number: uri.User, LegID: leg.ID(), CallID: leg.CallID()}
	s.mu.Unlock()
	s.restartRingTimer()
	s.transition(Redirected, "forwarded to "+target)
	s.finishOp(nil)
}

// opName is the running operation's name, for errors ("blindTransfer" when
// none runs any more, e.g. after a hangup interrupted it).
func (s *Session) opName() string {
	if s.op == nil {
		return "blindTransfer"
	}
	return s.op.req.name
}
