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

	// Fallback: callctl's own leg to the target.
	leg    *sip.Leg
	ep     *media.Endpoint
	writer *media.SDPWriter
	offer  []byte
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
	if !s.requireState(transferStates) {
		return
	}
	uri, transport, oe := s.e.resolve(s.op.req.name, target)
	if oe != nil {
		s.finishOp(oe)
		return
	}
	s.transferGen++
	t := &transfer{gen: s.transferGen, target: target, uri: uri, transport: transport, prev: s.state()}
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
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: "cannot send REFER: " + err.Error()})
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

// onReferResult handles the transferee's answer to REFER.
func (s *Session) onReferResult(ev *sip.Result, tag referTag) {
	t := s.transfer
	if t == nil || t.gen != tag.gen || t.completed {
		return
	}
	reason := reasonOf(ev.Response, ev.Status)
	switch {
	case ev.Status >= 200 && ev.Status < 300:
		// RFC 3515 2.4.2: 202 only says the REFER was accepted; the
		// outcome comes in NOTIFY.
		s.transferProgress(fmt.Sprintf("%d %s", ev.Status, reason), ev.Status)
		s.transition(Transferring, fmt.Sprintf("REFER accepted (%d); waiting for NOTIFY", ev.Status))
	case ev.Status != 408 && s.e.cfg.TransferFallback:
		s.log.Info("REFER refused; connecting the target itself", zap.Int("status", ev.Status))
		s.startFallback(fmt.Sprintf("REFER refused with %d %s", ev.Status, reason))
	case ev.Status == 408:
		s.failTransfer(timeout(s.op.req.name, "the "+s.partyName(t.transferee)+" did not answer REFER"))
	default:
		s.failTransfer(peerRefused(s.op.req.name, s.partyName(t.transferee), ev.Status, reason))
	}
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
	if t.completed {
		return
	}
	status, line := parseSipfrag(req.Body())
	terminated := false
	if ss := req.GetHeader("Subscription-State"); ss != nil {
		terminated = strings.HasPrefix(strings.ToLower(strings.TrimSpace(ss.Value())), "terminated")
	}
	switch {
	case status >= 200 && status < 300:
		s.transferProgress(line, status)
		s.completeTransfer(line)
	case status >= 300:
		s.transferProgress(line, status)
		s.failTransfer(peerRefused(s.op.req.name, "transfer target "+t.target, status, strings.TrimSpace(strings.TrimPrefix(line, strconv.Itoa(status)))))
	case status >= 100:
		s.transferProgress(line, status)
		if terminated {
			s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: "the transferee ended the REFER subscription without a final status (last: " + line + ")"})
		}
	case terminated:
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: "the transferee ended the REFER subscription without a final status"})
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
// time.
func (s *Session) completeTransfer(why string) {
	t := s.transfer
	t.completed = true
	s.stopMusic()
	s.transition(TransferCompleted, "transferee reached the target: "+why)
	t.transferor.Bye(`SIP;cause=200;text="transferred"`)
	s.after(s.e.cfg.TransferGrace, transferGrace{gen: t.gen})
	s.finishOp(nil)
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
	s.failTransfer(timeout(s.op.req.name, fmt.Sprintf("no final NOTIFY within %s", s.e.cfg.TransferTimeout)))
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
	s.transferProgress(err.Msg, err.Status)
	s.transition(TransferFailed, err.Error())
	s.transition(t.prev, "transfer failed; call restored")
	s.finishOp(err)
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
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: why + "; cannot offer the transferee's media: " + err.Error()})
		return
	}
	ep, err := s.e.ports.Allocate(s.e.endpointConfig(s.log))
	if err != nil {
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: why + "; no RTP ports: " + err.Error()})
		return
	}
	t.ep, t.writer = ep, media.NewSDPWriter("callctl")
	if t.offer, err = t.writer.Rewrite(body, ep.Advertise(), ep.Port()); err != nil {
		ep.Close()
		t.ep = nil
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: why + "; " + err.Error()})
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
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: why + "; dialling the target: " + err.Error()})
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
		ev.Leg.Bye(`SIP;cause=488;text="bad SDP"`)
		t.leg = nil
		t.ep.Close()
		s.failTransfer(&OpError{Code: CodePeerRefused, Op: s.op.req.name, Msg: "the transfer target answered with bad SDP: " + err.Error()})
		return
	}
	t.ep.SetRemote(info.Remote, info.RTCP)
	s.stopMusic()
	transfereeEp := s.endpoint(t.transferee)
	oldEp := s.endpoint(t.transferor)
	// The transferee keeps its endpoint and stream; only what feeds it
	// changes (media keeps sequence and timestamps continuous).
	media.Connect(transfereeEp, t.ep)
	t.transferor.Bye(`SIP;cause=200;text="transferred"`)
	party := Party{Number: t.uri.User, LegID: ev.Leg.ID(), CallID: ev.Leg.CallID()}
	if to := ev.Response.To(); to != nil {
		party.DisplayName = to.DisplayName
	}
	s.srtpLegReplaced(t.transferor == s.a)
	s.mu.Lock()
	if t.transferor == s.a {
		s.a, s.ea, s.wa, s.lastToA = ev.Leg, t.ep, t.writer, t.offer
		s.snap.Caller = party
	} else {
		s.b, s.eb, s.wb, s.lastToB = ev.Leg, t.ep, t.writer, t.offer
		s.snap.Callee = party
	}
	s.mu.Unlock()
	s.setFrom(ev.Leg, info)
	s.setRawFrom(ev.Leg, ev.Response.Body())
	s.mapEvents()
	if lm := s.e.cfg.Listen; lm != nil && lm.Count(s.id) > 0 {
		party := "callee"
		if t.transferor == s.a {
			party = "caller"
		}
		if tr, err := listen.TrackFor(t.ep, info, info); err == nil {
			if err := lm.Rebind(s.id, party, tr); err != nil {
				s.log.Warn("listeners keep the old party's track", zap.Error(err))
			}
		}
	}
	oldEp.Close()
	s.transfer = nil
	s.holdA, s.holdB = false, false
	s.transferProgress("target answered; callctl bridged it", 200)
	s.transition(TransferCompleted, "callctl connected the transfer target "+t.target)
	s.transition(InCall, "in call with the transfer target "+t.target)
	s.finishOp(nil)
}

func (s *Session) onFallbackFailed(ev *sip.Failed) {
	t := s.transfer
	t.leg = nil
	t.ep.Close()
	s.failTransfer(peerRefused(s.op.req.name, "transfer target "+t.target, ev.Status, reasonOf(ev.Response, ev.Status)))
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
	uri, transport, oe := s.e.resolve(s.op.req.name, target)
	if oe != nil {
		s.finishOp(oe)
		return
	}
	writer := media.NewSDPWriter("callctl")
	offer, err := writer.Rewrite(s.a.Invite().Body(), s.eb.Advertise(), s.eb.Port())
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
	s.b, s.wb, s.lastToB = leg, writer, offer
	s.mu.Lock()
	s.snap.Callee = Party{Number: uri.User, LegID: leg.ID(), CallID: leg.CallID()}
	s.mu.Unlock()
	s.restartRingTimer()
	s.transition(Redirected, "forwarded to "+target)
	s.finishOp(nil)
}
