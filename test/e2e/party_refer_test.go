package e2e

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// A REFER from a party (a phone's own transfer, issue 11 point 9): callctl
// performs it (calls.party_refer: perform) or refuses it (refuse).

// partyReferCall is a SIPp caller (uac_pcmu_rtp_wait_bye.xml, 1000) whose
// callee, the trunk, is referrer (a SIPp UAS that sends REFER); 4xxx goes
// to target.
type partyReferCall struct {
	cc                *callctl
	uac               *peers.SIPp
	referrer, target  *peers.SIPp
	callerMedia       int
	callerDir, tgtDir string
}

func startPartyReferCall(t *testing.T, referrerScenario, targetScenario string, configure func(*config.Config)) *partyReferCall {
	t.Helper()
	callerDir, calleeDir, targetDir := t.TempDir(), t.TempDir(), t.TempDir()
	peers.ConstantAudioFile(t, callerDir, 2, callerPayload)
	peers.ConstantAudioFile(t, calleeDir, 2, calleePayload)
	peers.ConstantAudioFile(t, targetDir, 2, targetPayload)
	p := &partyReferCall{callerDir: callerDir, tgtDir: targetDir}
	p.referrer = peers.StartSIPp(t, peers.SIPpOptions{Scenario: referrerScenario, Dir: calleeDir})
	p.target = peers.StartSIPp(t, peers.SIPpOptions{Scenario: targetScenario, Dir: targetDir})
	p.cc = startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = p.referrer.LocalAddr()
		cfg.Routes = []config.Route{{Match: `^4\d+$`, Target: "sip:{number}@" + p.target.LocalAddr()}}
		cfg.Calls.TransferTimeout = 8 * time.Second
		if configure != nil {
			configure(cfg)
		}
	})
	p.callerMedia, _ = peers.FreePortRange(t, 4)
	return p
}

func (p *partyReferCall) dial(t *testing.T) string {
	t.Helper()
	p.uac = peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: p.cc.addr(),
		Service:    "1000",
		Dir:        p.callerDir,
		MediaPort:  p.callerMedia,
	})
	id := p.cc.firstSession(t, 5*time.Second)
	p.cc.waitState(t, id, session.InCall, 10*time.Second)
	return id
}

// The callee (a SIPp UAS) blind-transfers the caller to 4000 with REFER.
// callctl answers 202, NOTIFYs "SIP/2.0 100 Trying", dials 4000 itself
// through its routes and, once it answers, NOTIFYs "SIP/2.0 200 OK" with
// the subscription terminated and hangs the referrer up (its scenario
// checks all of that in order). The session walks IN_CALL →
// TRANSFER_REQUESTED → TRANSFERRING → IN_CALL, with transfer info naming the
// referrer (1000) as transferor and 4000 as target, a blindTransfer
// operation event by REFER, and a transferCompleted one; the caller and the
// target then hear each other through callctl (a capture finds each one's
// payload at the other's port, and none of the referrer's) until a client
// hangs up.
func TestPartyBlindReferIsPerformedByCallctlWithNotifiesToTheReferrer(t *testing.T) {
	t.Parallel()
	p := startPartyReferCall(t, sipp.Scenario(t, "uas_party_refer.xml"), sipp.Scenario(t, "uas_pcmu_rtp.xml"), nil)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", p.callerMedia, p.target.MediaPort()))
	id := p.dial(t)
	cc := p.cc

	transferring := cc.waitState(t, id, session.Transferring, 5*time.Second)
	connected := cc.waitStateAfter(t, id, session.InCall, transferring, 10*time.Second)
	cc.WaitEvent(t, 5*time.Second, "a blindTransfer operation event by REFER, ok", func(e session.Event) bool {
		return e.Type == session.EventOperation && e.SessionID == id && e.Operation != nil && e.Operation.Name == "blindTransfer" &&
			e.Operation.Result == "ok" && e.Operation.Args["by"] == "REFER" && e.Operation.Args["transferor"] == "1000" && e.Operation.Args["target"] == "4000"
	})
	cc.WaitEvent(t, 5*time.Second, "a transferCompleted operation event", func(e session.Event) bool {
		return e.Type == session.EventOperation && e.SessionID == id && e.Operation != nil && e.Operation.Name == "transferCompleted"
	})
	if !p.referrer.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 202, NOTIFY 100, NOTIFY 200 (terminated) and BYE in order: %s", p.referrer.Errors())
	}
	s := cc.snapshot(t, id)
	if s.State != session.InCall || s.Caller.Number != "sipp" || s.Callee.Number != "4000" {
		t.Errorf("after the REFER the session is %s between %q and %q; want %s between sipp and 4000", s.State, s.Caller.Number, s.Callee.Number, session.InCall)
	}
	if tr := s.Transfer; tr == nil || tr.Transferor != "1000" || tr.Target != "4000" || tr.Status != 200 {
		t.Errorf("transfer info %+v; want transferor 1000 (the referrer), target 4000, status 200", tr)
	}

	time.Sleep(2 * time.Second)
	hangupAt := time.Now()
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	p.uac.ExpectPass(t, 10*time.Second)
	p.target.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)
	if walk := cc.Walk(id); !containsRun(walk, session.InCall, session.TransferRequested, session.Transferring, session.InCall, session.HungUp) {
		t.Errorf("session went %v; want … %s → %s → %s → %s → %s", walk, session.InCall, session.TransferRequested, session.Transferring, session.InCall, session.HungUp)
	}

	lo, hi := cc.rtpPorts(t)
	from := connected.Time.Add(300 * time.Millisecond)
	want := expectedPackets(from, hangupAt, 0.7)
	toTarget := between(fromPortsTo(pkts, lo, hi, p.target.MediaPort()), from, hangupAt)
	toCaller := between(fromPortsTo(pkts, lo, hi, p.callerMedia), from, hangupAt)
	t.Logf("after the transfer: %d RTP packets to the target (%d the caller's), %d to the caller (%d the target's, %d the referrer's); want ≥ %d",
		len(toTarget), carrying(toTarget, callerPayload), len(toCaller), carrying(toCaller, targetPayload), carrying(toCaller, calleePayload), want)
	if n := carrying(toTarget, callerPayload); n < want {
		t.Errorf("the target received %d RTP packets of the caller's audio; want ≥ %d", n, want)
	}
	if n := carrying(toCaller, targetPayload); n < want {
		t.Errorf("the caller received %d RTP packets of the target's audio; want ≥ %d", n, want)
	}
	if n := carrying(toCaller, calleePayload); n > 0 {
		t.Errorf("the caller received %d RTP packets of the referrer's audio after the transfer; want none", n)
	}
	cc.expectIdle(t)
}

// The Refer-To target answers 486: callctl NOTIFYs the referrer "SIP/2.0
// 486 Busy Here" (terminated) and hangs nobody up; the session goes
// TRANSFER_FAILED and back to IN_CALL between the original parties, whose
// audio is still relayed both ways, until a client hangs up (both get BYE).
func TestPartyReferToBusyTargetNotifies486AndTheCallGoesOn(t *testing.T) {
	t.Parallel()
	p := startPartyReferCall(t, scenarioVariant(t, "uas_party_refer.xml", "^SIP/2.0 200 OK", "^SIP/2.0 486 Busy Here"),
		sipp.Scenario(t, "uas_busy.xml"), nil)
	id := p.dial(t)
	cc := p.cc
	failed := cc.waitState(t, id, session.TransferFailed, 10*time.Second)
	cc.waitStateAfter(t, id, session.InCall, failed, 5*time.Second)
	cc.WaitEvent(t, 5*time.Second, "a blindTransfer operation event by REFER, failed", func(e session.Event) bool {
		return e.Type == session.EventOperation && e.SessionID == id && e.Operation != nil && e.Operation.Name == "blindTransfer" &&
			e.Operation.Result == "error" && e.Operation.Args["by"] == "REFER"
	})
	p.target.ExpectPass(t, 10*time.Second)
	s0 := cc.snapshot(t, id)
	if s0.State != session.InCall || s0.Caller.Number != "sipp" || s0.Callee.Number != "1000" {
		t.Errorf("after the failed transfer the session is %s between %q and %q; want %s between sipp and 1000", s0.State, s0.Caller.Number, s0.Callee.Number, session.InCall)
	}
	if tr := s0.Transfer; tr == nil || tr.Status != 486 {
		t.Errorf("transfer info %+v; want status 486", tr)
	}
	time.Sleep(1500 * time.Millisecond)
	s1 := cc.snapshot(t, id)
	for _, role := range []string{"caller", "callee"} {
		before, after := callctltest.LegStats(s0, role).PacketsOut, callctltest.LegStats(s1, role).PacketsOut
		if after < before+40 {
			t.Errorf("callctl sent the %s %d RTP packets in the 1.5 s after the failed transfer; want ≥ 40", role, after-before)
		}
	}
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	if !p.referrer.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 202, NOTIFY 100, NOTIFY 486 (terminated), then the hangup's BYE: %s", p.referrer.Errors())
	}
	p.uac.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.Transferring,
		session.TransferFailed, session.InCall, session.HungUp)
	cc.expectIdle(t)
}

// refusedRefer is uas_party_refer.xml expecting status to its REFER (and
// nothing else until the BYE), with Refer-To referTo.
func refusedRefer(t *testing.T, status, referTo string) string {
	block := scenarioBlock(t, "uas_party_refer.xml", "<!-- 202 -->", "<!-- /202 -->")
	return scenarioVariant(t, "uas_party_refer.xml", block, `<recv response="`+status+`"/>`,
		"Refer-To: <sip:4000@[remote_ip]:[remote_port]>", "Refer-To: "+referTo)
}

// With calls.party_refer: refuse the callee's REFER gets 403 with a Warning
// naming the policy, nothing is dialled (the target's scenario never runs),
// and the session stays IN_CALL until a client hangs up.
func TestPartyReferRefusedByPolicyGets403(t *testing.T) {
	t.Parallel()
	p := startPartyReferCall(t, refusedRefer(t, "403", "<sip:4000@[remote_ip]:[remote_port]>"), sipp.Scenario(t, "uas_pcmu_rtp.xml"),
		func(cfg *config.Config) { cfg.Calls.PartyRefer = "refuse" })
	id := p.dial(t)
	time.Sleep(2 * time.Second) // the REFER comes 1 s after the ACK
	expectReferAnswer(t, p.referrer, "403", "calls.party_refer")
	if err := p.cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	if !p.referrer.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 403, then the hangup's BYE: %s", p.referrer.Errors())
	}
	p.uac.ExpectPass(t, 10*time.Second)
	p.cc.WaitEnded(t, id, 5*time.Second)
	p.cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.HungUp)
	p.cc.expectIdle(t)
}

// expectReferAnswer checks that SIPp s received a status response to its
// REFER whose Warning contains warn.
func expectReferAnswer(t *testing.T, s *peers.SIPp, status, warn string) {
	t.Helper()
	for _, m := range responses(receivedMessages(s), status) {
		if strings.Contains(m.Text, "REFER") {
			if !strings.Contains(header(m.Text, "Warning"), warn) {
				t.Errorf("the %s to REFER has Warning %q; want it to name %q", status, header(m.Text, "Warning"), warn)
			}
			return
		}
	}
	t.Errorf("no %s to the REFER in the referrer's trace", status)
}

// A Refer-To that is not a sip:/sips:/tel: URI, or that carries a URI
// header other than Replaces (a Route would steer the call anywhere), gets
// 400 naming the problem; nothing is dialled and the call goes on.
func TestPartyReferWithBadReferToGets400(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, referTo, warn string }{
		{"http URI", "<http://evil.example/>", "sip:, sips: or tel:"},
		{"URI header Route", "<sip:4000@[remote_ip]:[remote_port]?Route=%3Csip:evil.example%3E>", "other than Replaces"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startPartyReferCall(t, refusedRefer(t, "400", c.referTo), sipp.Scenario(t, "uas_pcmu_rtp.xml"), nil)
			id := p.dial(t)
			time.Sleep(2 * time.Second)
			expectReferAnswer(t, p.referrer, "400", c.warn)
			if err := p.cc.app.Engine().Hangup(opContext(t), id); err != nil {
				t.Errorf("Hangup: %v", err)
			}
			if !p.referrer.ExpectPass(t, 10*time.Second) {
				t.Errorf("the referrer did not get 400, then the hangup's BYE: %s", p.referrer.Errors())
			}
			p.uac.ExpectPass(t, 10*time.Second)
			p.cc.WaitEnded(t, id, 5*time.Second)
			if walk := p.cc.Walk(id); slices.Contains(walk, session.TransferRequested) {
				t.Errorf("session went %v; want no transfer", walk)
			}
			p.cc.expectIdle(t)
		})
	}
}

// dialogOf is the Call-ID and tags of the dialog a SIPp UAC set up, from the
// 200 to its INVITE in its trace.
func dialogOf(t *testing.T, s *peers.SIPp) (callID, fromTag, toTag string) {
	t.Helper()
	for _, m := range responses(receivedMessages(s), "200") {
		if !strings.Contains(header(m.Text, "CSeq"), "INVITE") {
			continue
		}
		tag := func(h string) string {
			_, v, _ := strings.Cut(h, "tag=")
			v, _, _ = strings.Cut(v, ";")
			return strings.TrimSpace(v)
		}
		return header(m.Text, "Call-ID"), tag(header(m.Text, "From")), tag(header(m.Text, "To"))
	}
	t.Fatalf("no 200 to the INVITE in the trace of %s", s.MessagesLog())
	return
}

// An attended transfer done by a phone P (RFC 3891): P talks to A (a SIPp
// caller) in session S1 and has a second call, to C (a SIPp UAS, 5000), in
// session S2; it sends in S1 a REFER whose Refer-To carries Replaces naming
// its dialog of S2. callctl joins A and C itself: P gets 202, NOTIFY 100,
// NOTIFY 200 (terminated) and BYE on S1 (its scenario checks that order)
// and BYE on S2 (that UAC passes only on a BYE); S2 walks IN_CALL →
// TRANSFER_REQUESTED → TRANSFERRING → TRANSFER_COMPLETED; S1 goes
// TRANSFERRING → IN_CALL between A and 5000; A and C hear each other
// through callctl (a capture finds each one's payload at the other's port,
// none of P's) until a client hangs S1 up, which both get as BYE.
func TestPartyAttendedReferWithReplacesJoinsTheOtherPartiesOfTwoCalls(t *testing.T) {
	t.Parallel()
	callerDir, phoneDir, targetDir := t.TempDir(), t.TempDir(), t.TempDir()
	peers.ConstantAudioFile(t, callerDir, 2, callerPayload)
	peers.ConstantAudioFile(t, phoneDir, 2, calleePayload)
	peers.ConstantAudioFile(t, targetDir, 2, targetPayload)
	c := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: targetDir})
	p1Port := peers.FreeUDPPort(t)
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{
			{Match: `^5\d+$`, Target: "sip:{number}@" + c.LocalAddr()},
			{Match: `^1\d+$`, Target: fmt.Sprintf("sip:{number}@127.0.0.1:%d", p1Port)},
		}
		cfg.Calls.TransferTimeout = 8 * time.Second
	})
	// P's second call, to C: session S2.
	p2 := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"), RemoteAddr: cc.addr(),
		Service: "5000", Dir: phoneDir})
	s2 := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, s2, session.InCall, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // its trace has the 200
	callID, fromTag, toTag := dialogOf(t, p2)
	replaces := url.PathEscape(callID + ";to-tag=" + toTag + ";from-tag=" + fromTag)
	replaces = strings.NewReplacer(";", "%3B", "=", "%3D", "@", "%40").Replace(replaces)

	// A calls P: session S1, where P sends the REFER.
	p1 := peers.StartSIPp(t, peers.SIPpOptions{LocalPort: p1Port, Dir: phoneDir, Scenario: scenarioVariant(t, "uas_party_refer.xml",
		"Refer-To: <sip:4000@[remote_ip]:[remote_port]>", "Refer-To: <sip:5000@[remote_ip]:[remote_port]?Replaces="+replaces+">")})
	aMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", aMedia, c.MediaPort()))
	a := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"), RemoteAddr: cc.addr(),
		Service: "1000", Dir: callerDir, MediaPort: aMedia})
	s1 := cc.WaitEvent(t, 5*time.Second, "session S1 in call", func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.State == session.InCall && e.SessionID != s2
	}).SessionID

	transferring := cc.waitState(t, s1, session.Transferring, 5*time.Second)
	joined := cc.waitStateAfter(t, s1, session.InCall, transferring, 5*time.Second)
	end2 := cc.WaitEnded(t, s2, 5*time.Second)
	if end2.State != session.TransferCompleted {
		t.Errorf("S2 ended %s (%s); want %s", end2.State, end2.Reason, session.TransferCompleted)
	}
	cc.ExpectWalk(t, s2, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.Transferring, session.TransferCompleted)
	if !p1.ExpectPass(t, 10*time.Second) {
		t.Errorf("P did not get 202, NOTIFY 100, NOTIFY 200 (terminated) and BYE on S1: %s", p1.Errors())
	}
	if !p2.ExpectPass(t, 10*time.Second) {
		t.Errorf("P did not get BYE on S2: %s", p2.Errors())
	}
	snap := cc.snapshot(t, s1)
	if snap.State != session.InCall || snap.Caller.Number != "sipp" || snap.Callee.Number != "5000" {
		t.Errorf("after the join S1 is %s between %q and %q; want %s between sipp and 5000", snap.State, snap.Caller.Number, snap.Callee.Number, session.InCall)
	}
	if tr := snap.Transfer; tr == nil || tr.Transferor != "1000" || tr.Target != "5000" || tr.Status != 200 {
		t.Errorf("S1 transfer info %+v; want transferor 1000, target 5000, status 200", tr)
	}

	time.Sleep(2 * time.Second)
	hangupAt := time.Now()
	if err := cc.app.Engine().Hangup(opContext(t), s1); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	a.ExpectPass(t, 10*time.Second)
	c.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, s1, 5*time.Second)
	pkts := capture.Stop(t)
	if walk := cc.Walk(s1); !containsRun(walk, session.InCall, session.TransferRequested, session.Transferring, session.InCall, session.HungUp) {
		t.Errorf("S1 went %v; want … %s → %s → %s → %s → %s", walk, session.InCall, session.TransferRequested, session.Transferring, session.InCall, session.HungUp)
	}
	lo, hi := cc.rtpPorts(t)
	from := joined.Time.Add(300 * time.Millisecond)
	want := expectedPackets(from, hangupAt, 0.7)
	toC := between(fromPortsTo(pkts, lo, hi, c.MediaPort()), from, hangupAt)
	toA := between(fromPortsTo(pkts, lo, hi, aMedia), from, hangupAt)
	t.Logf("after the join: %d RTP packets to C (%d A's), %d to A (%d C's, %d P's); want ≥ %d",
		len(toC), carrying(toC, callerPayload), len(toA), carrying(toA, targetPayload), carrying(toA, calleePayload), want)
	if n := carrying(toC, callerPayload); n < want {
		t.Errorf("C received %d RTP packets of A's audio; want ≥ %d", n, want)
	}
	if n := carrying(toA, targetPayload); n < want {
		t.Errorf("A received %d RTP packets of C's audio; want ≥ %d", n, want)
	}
	if n := carrying(toA, calleePayload) + carrying(toC, calleePayload); n > 0 {
		t.Errorf("A and C received %d RTP packets of P's audio after the join; want none", n)
	}
	cc.expectIdle(t)
}

// A real phone's blind transfer: baresip 2001 calls baresip 3002 through
// callctl; 3002 holds 2001 (CALLER_ON_HOLD), then transfers it with its
// transfer command to 4000 (a SIPp UAS). callctl performs the REFER: 3002's
// call closes (it had NOTIFY 200 and BYE), 2001 is resumed by a re-INVITE
// (its call is no longer on hold: it sends and receives audio, which reaches
// the target and comes back from it through callctl), and the session goes
// TRANSFERRING → IN_CALL between 2001 and 4000.
func TestPartyReferFromBaresipHoldingTheCallerResumesItWithTheTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	target := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()},
			{Match: `^4\d+$`, Target: "sip:{number}@" + target.LocalAddr()}}
		cfg.Calls.TransferTimeout = 8 * time.Second
	})
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})
	if err := alice.Dial("sip:3002@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	if err := bob.Hold(); err != nil {
		t.Fatal(err)
	}
	cc.waitState(t, id, session.CallerOnHold, 5*time.Second)
	if _, err := bob.Command("transfer", "sip:4000@"+cc.addr()); err != nil {
		t.Fatal(err)
	}
	transferring := cc.waitState(t, id, session.Transferring, 5*time.Second)
	cc.waitStateAfter(t, id, session.InCall, transferring, 10*time.Second)
	if _, err := bob.WaitEvent(peers.EventCallClosed, 10*time.Second); err != nil {
		t.Errorf("3002's call did not close after the transfer: %v", err)
	}
	s := cc.snapshot(t, id)
	if s.Caller.Number != "2001" || s.Callee.Number != "4000" {
		t.Errorf("after the transfer the session is between %q and %q; want 2001 and 4000", s.Caller.Number, s.Callee.Number)
	}
	time.Sleep(time.Second) // the resume re-INVITE
	s0 := cc.snapshot(t, id)
	a0, err := alice.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	s1 := cc.snapshot(t, id)
	a1, err := alice.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	grew := func(what string, before, after uint64) {
		t.Logf("%s: %d → %d", what, before, after)
		if after < before+40 {
			t.Errorf("%s grew by %d RTP packets in 1.5 s after the transfer; want ≥ 40", what, after-before)
		}
	}
	grew("callctl relayed 2001→4000", callctltest.LegStats(s0, "callee").PacketsOut, callctltest.LegStats(s1, "callee").PacketsOut)
	grew("callctl relayed 4000→2001", callctltest.LegStats(s0, "caller").PacketsOut, callctltest.LegStats(s1, "caller").PacketsOut)
	grew("2001 received", a0.RxPackets, a1.RxPackets)
	grew("2001 sent", a0.TxPackets, a1.TxPackets)
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	target.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerOnHold, session.TransferRequested,
		session.Transferring, session.InCall, session.HungUp)
	cc.expectIdle(t)
}

// A Replaces naming a dialog callctl does not know (an attended transfer to
// a call not through callctl) is not dialled: the referrer gets 202, NOTIFY
// 100 and NOTIFY "SIP/2.0 481 …" (terminated), the session goes
// TRANSFER_FAILED and back to IN_CALL, and nothing reaches the target.
func TestPartyReferWithUnknownReplacesNotifies481AndTheCallGoesOn(t *testing.T) {
	t.Parallel()
	p := startPartyReferCall(t, scenarioVariant(t, "uas_party_refer.xml",
		"Refer-To: <sip:4000@[remote_ip]:[remote_port]>", "Refer-To: <sip:4000@[remote_ip]:[remote_port]?Replaces=nosuch%40h%3Bto-tag%3Da%3Bfrom-tag%3Db>",
		"^SIP/2.0 200 OK", "^SIP/2.0 481 Call/Transaction Does Not Exist"), sipp.Scenario(t, "uas_pcmu_rtp.xml"), nil)
	id := p.dial(t)
	failed := p.cc.waitState(t, id, session.TransferFailed, 10*time.Second)
	p.cc.waitStateAfter(t, id, session.InCall, failed, 5*time.Second)
	waitTrace(t, p.referrer, "SIP/2.0 481", 5*time.Second)
	if s := p.cc.snapshot(t, id); s.Caller.Number != "sipp" || s.Callee.Number != "1000" || s.Transfer == nil || s.Transfer.Status != 481 {
		t.Errorf("after the refused Replaces the session is between %q and %q, transfer %+v; want sipp and 1000, status 481", s.Caller.Number, s.Callee.Number, s.Transfer)
	}
	if err := p.cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	if !p.referrer.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 202, NOTIFY 100, NOTIFY 481 (terminated), then the hangup's BYE: %s", p.referrer.Errors())
	}
	p.uac.ExpectPass(t, 10*time.Second)
	p.cc.WaitEnded(t, id, 5*time.Second)
	if strings.Contains(p.target.Messages(), "INVITE sip:") {
		t.Errorf("the target was dialled for a Replaces callctl does not know")
	}
	p.cc.expectIdle(t)
}

// Many phones hang up as soon as their REFER is accepted. The referrer
// here sends BYE right after NOTIFY 100: the transfer goes on, the target
// answers, and the caller talks to it through callctl (IN_CALL between
// sipp and 4000, audio relayed both ways) until a client hangs up.
func TestPartyReferrerHangingUpAfter202DoesNotStopTheTransfer(t *testing.T) {
	t.Parallel()
	data, err := sipp.Load("uas_party_refer.xml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	second := strings.Index(text, `<recv request="NOTIFY">`)
	second += strings.Index(text[second+1:], `<recv request="NOTIFY">`) + 1
	end := strings.Index(text, "<!-- Keep the call around")
	text = text[:second] + `<send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: [$callee];tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true">
    <action>
      <exec rtp_stream="pause"/>
    </action>
  </recv>

  ` + text[end:]
	path := t.TempDir() + "/uas_party_refer_bye.xml"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPartyReferCall(t, path, sipp.Scenario(t, "uas_pcmu_rtp.xml"), nil)
	id := p.dial(t)
	transferring := p.cc.waitState(t, id, session.Transferring, 5*time.Second)
	p.cc.waitStateAfter(t, id, session.InCall, transferring, 10*time.Second)
	if !p.referrer.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer's REFER, NOTIFY 100 and BYE did not go as expected: %s", p.referrer.Errors())
	}
	s0 := p.cc.snapshot(t, id)
	if s0.Caller.Number != "sipp" || s0.Callee.Number != "4000" {
		t.Errorf("after the transfer the session is between %q and %q; want sipp and 4000", s0.Caller.Number, s0.Callee.Number)
	}
	time.Sleep(1500 * time.Millisecond)
	s1 := p.cc.snapshot(t, id)
	for _, role := range []string{"caller", "callee"} {
		if before, after := callctltest.LegStats(s0, role).PacketsOut, callctltest.LegStats(s1, role).PacketsOut; after < before+40 {
			t.Errorf("callctl sent the %s %d RTP packets in 1.5 s after the transfer; want ≥ 40", role, after-before)
		}
	}
	if err := p.cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	p.uac.ExpectPass(t, 10*time.Second)
	p.target.ExpectPass(t, 10*time.Second)
	p.cc.WaitEnded(t, id, 5*time.Second)
	p.cc.expectIdle(t)
}

// waitTrace waits until SIPp s's message trace holds text.
func waitTrace(t *testing.T, s *peers.SIPp, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.Messages(), text) {
		if time.Now().After(deadline) {
			t.Errorf("%q not in the trace of %s within %s", text, s.MessagesLog(), timeout)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // its answer
}

// With calls.party_refer: relay the caller's REFER (uac_party_refer.xml)
// goes on to the callee in its own dialog, with the target resolved as a
// client's transfer target (Refer-To sip:4000@<trunk>); the callee, a
// transferee that NOTIFYs 200 before its 202 (uas_refer_notify_before_202),
// makes callctl answer the referrer 202 and relay the NOTIFY (sipfrag 200,
// terminated, Event refer;id=<the referrer's REFER CSeq>), then hang the
// referrer up; the callee's BYE ends the session TRANSFER_COMPLETED, with
// the REFER's blindTransfer operation event ok.
func TestPartyReferRelayedToTheOtherPartyWithItsNotifyRelayedBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_refer_notify_before_202.xml"), Dir: dir, Transport: "t1"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Routes = []config.Route{{Match: `^1\d+$`, Target: "sip:{number}@" + uas.LocalAddr(), Transport: "tcp"}}
		cfg.Calls.PartyRefer = "relay"
		cfg.Calls.TransferTimeout = 5 * time.Second
		cfg.Calls.TransferGrace = 3 * time.Second
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uac_party_refer.xml"), RemoteAddr: cc.addr(), Service: "1000", Dir: dir})
	id := cc.firstSession(t, 5*time.Second)
	end := cc.WaitEnded(t, id, 10*time.Second)
	if end.State != session.TransferCompleted {
		t.Errorf("session ended %s (%s); want %s", end.State, end.Reason, session.TransferCompleted)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.Transferring, session.TransferCompleted)
	cc.WaitEvent(t, 5*time.Second, "a blindTransfer operation event by REFER, ok", func(e session.Event) bool {
		return e.Type == session.EventOperation && e.SessionID == id && e.Operation != nil && e.Operation.Name == "blindTransfer" &&
			e.Operation.Result == "ok" && e.Operation.Args["by"] == "REFER" && e.Operation.Args["transferor"] == "sipp"
	})
	if !uac.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 202, the relayed NOTIFY 200 (terminated) and BYE: %s", uac.Errors())
	}
	if !uas.ExpectPass(t, 10*time.Second) {
		t.Errorf("the transferee's REFER, NOTIFY and BYE did not go as expected: %s", uas.Errors())
	}
	var referTo string
	for _, m := range receivedMessages(uas) {
		if strings.HasPrefix(m.Text, "REFER ") {
			referTo = header(m.Text, "Refer-To")
		}
	}
	if want := "<sip:4000@" + uas.LocalAddr(); !strings.HasPrefix(referTo, want) {
		t.Errorf("the REFER relayed to the callee has Refer-To %q; want %s…>", referTo, want)
	}
	cc.expectIdle(t)
}

// With calls.party_refer: relay a callee that declines the relayed REFER
// (603) has its answer reach the referrer as the answer to its REFER (603,
// no NOTIFY); callctl does not dial the target itself, and the call goes
// back to IN_CALL until a client hangs up.
func TestPartyReferRelayedAndDeclinedReachesTheReferrerAs603(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: scenarioVariant(t, "uas_refuse_refer_405.xml", "405 Method Not Allowed", "603 Decline"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.PartyRefer = "relay"
	})
	data, err := sipp.Load("uac_party_refer.xml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, `<recv response="202"/>`), strings.Index(text, `<recv request="BYE">`)
	path := t.TempDir() + "/uac_party_refer_603.xml"
	if err := os.WriteFile(path, []byte(text[:i]+`<recv response="603"/>

  `+text[j:]), 0o644); err != nil {
		t.Fatal(err)
	}
	uac := peers.StartSIPp(t, peers.SIPpOptions{Scenario: path, RemoteAddr: cc.addr(), Service: "1000", Dir: dir})
	id := cc.firstSession(t, 5*time.Second)
	failed := cc.waitState(t, id, session.TransferFailed, 10*time.Second)
	cc.waitStateAfter(t, id, session.InCall, failed, 5*time.Second)
	waitTrace(t, uac, "SIP/2.0 603", 5*time.Second)
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	if !uac.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 603 to its REFER, then the hangup's BYE: %s", uac.Errors())
	}
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.TransferFailed, session.InCall, session.HungUp)
	cc.expectIdle(t)
}

// pcma is a variant of a PCMU scenario that offers, answers and streams
// PCMA (payload type 8) instead.
func pcma(t *testing.T, name string) string {
	return scenarioVariant(t, name, "RTP/AVP 0\n", "RTP/AVP 8\n", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
		"tone.raw,-1,0", "tone.raw,-1,8")
}

// An attended transfer between a call in PCMU and one in PCMA: callctl
// relays RTP unchanged and does not transcode, so it does not join them.
// P gets NOTIFY "SIP/2.0 488 …" (terminated) on S1, which goes
// TRANSFER_FAILED and back to IN_CALL between A and P; S2 never leaves
// IN_CALL; nobody is hung up until a client hangs up both calls.
func TestPartyAttendedReferBetweenCallsOfDifferentCodecsIsRefusedWith488(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	c := peers.StartSIPp(t, peers.SIPpOptions{Scenario: scenarioVariant(t, "uas_pcmu_rtp.xml", "RTP/AVP( [0-9]+)* 0(", "RTP/AVP( [0-9]+)* 8(",
		"RTP/AVP 0\n", "RTP/AVP 8\n", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000"), Dir: dir})
	p1Port := peers.FreeUDPPort(t)
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{
			{Match: `^5\d+$`, Target: "sip:{number}@" + c.LocalAddr()},
			{Match: `^1\d+$`, Target: fmt.Sprintf("sip:{number}@127.0.0.1:%d", p1Port)},
		}
		cfg.Calls.TransferTimeout = 8 * time.Second
	})
	p2 := peers.StartSIPp(t, peers.SIPpOptions{Scenario: pcma(t, "uac_pcmu_rtp_wait_bye.xml"), RemoteAddr: cc.addr(), Service: "5000", Dir: dir})
	s2 := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, s2, session.InCall, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	callID, fromTag, toTag := dialogOf(t, p2)
	replaces := strings.NewReplacer(";", "%3B", "=", "%3D", "@", "%40").Replace(callID + ";to-tag=" + toTag + ";from-tag=" + fromTag)
	p1 := peers.StartSIPp(t, peers.SIPpOptions{LocalPort: p1Port, Dir: dir, Scenario: scenarioVariant(t, "uas_party_refer.xml",
		"Refer-To: <sip:4000@[remote_ip]:[remote_port]>", "Refer-To: <sip:5000@[remote_ip]:[remote_port]?Replaces="+replaces+">",
		"^SIP/2.0 200 OK", "^SIP/2.0 488 ")})
	a := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"), RemoteAddr: cc.addr(), Service: "1000", Dir: dir})
	s1 := cc.WaitEvent(t, 5*time.Second, "session S1 in call", func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.State == session.InCall && e.SessionID != s2
	}).SessionID
	failed := cc.waitState(t, s1, session.TransferFailed, 10*time.Second)
	cc.waitStateAfter(t, s1, session.InCall, failed, 5*time.Second)
	waitTrace(t, p1, "SIP/2.0 488", 5*time.Second)
	if s := cc.snapshot(t, s1); s.Callee.Number != "1000" || s.Transfer == nil || s.Transfer.Status != 488 {
		t.Errorf("S1 after the refused join: callee %q, transfer %+v; want 1000, status 488", s.Callee.Number, s.Transfer)
	}
	for _, id := range []string{s1, s2} {
		if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
			t.Errorf("Hangup %s: %v", id, err)
		}
	}
	for what, s := range map[string]*peers.SIPp{"P on S1": p1, "P on S2": p2, "A": a, "C": c} {
		if !s.ExpectPass(t, 10*time.Second) {
			t.Errorf("%s: %s", what, s.Errors())
		}
	}
	cc.WaitEnded(t, s1, 5*time.Second)
	cc.WaitEnded(t, s2, 5*time.Second)
	cc.ExpectWalk(t, s2, session.Setup, session.Ringing, session.InCall, session.HungUp)
	cc.expectIdle(t)
}

// A REFER with Refer-Sub: false (RFC 4488) asks for no subscription: callctl
// answers 202 with Refer-Sub: false, sends no NOTIFY, performs the transfer
// (the target answers; the caller talks to it) and hangs the referrer up.
func TestPartyReferWithReferSubFalseGetsNoNotify(t *testing.T) {
	t.Parallel()
	block := scenarioBlock(t, "uas_party_refer.xml", "<!-- 202 -->", "<!-- /202 -->")
	p := startPartyReferCall(t, scenarioVariant(t, "uas_party_refer.xml", block, `<recv response="202"/>`,
		"Refer-To: <sip:4000@[remote_ip]:[remote_port]>", "Refer-To: <sip:4000@[remote_ip]:[remote_port]>\n      Refer-Sub: false"),
		sipp.Scenario(t, "uas_pcmu_rtp.xml"), nil)
	id := p.dial(t)
	transferring := p.cc.waitState(t, id, session.Transferring, 5*time.Second)
	p.cc.waitStateAfter(t, id, session.InCall, transferring, 10*time.Second)
	if !p.referrer.ExpectPass(t, 10*time.Second) {
		t.Errorf("the referrer did not get 202 and then BYE, with no NOTIFY: %s", p.referrer.Errors())
	}
	expectReferAnswer(t, p.referrer, "202", "")
	for _, m := range responses(receivedMessages(p.referrer), "202") {
		if !strings.EqualFold(header(m.Text, "Refer-Sub"), "false") {
			t.Errorf("the 202 has Refer-Sub %q; want false (RFC 4488 4)", header(m.Text, "Refer-Sub"))
		}
	}
	if s := p.cc.snapshot(t, id); s.Callee.Number != "4000" {
		t.Errorf("after the transfer the callee is %q; want 4000", s.Callee.Number)
	}
	if err := p.cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	p.uac.ExpectPass(t, 10*time.Second)
	p.target.ExpectPass(t, 10*time.Second)
	p.cc.WaitEnded(t, id, 5*time.Second)
	p.cc.expectIdle(t)
}
