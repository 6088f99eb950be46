package e2e

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// Through callctl, a SIPp caller and a SIPp callee (the "PBX" trunk) talk
// PCMU for 20 s, then the caller hangs up. The call connects, both SIPp
// scenarios pass, at least 95% of the RTP each side sent reaches the other
// (counted twice: by callctl's per-leg counters and by a capture of what
// arrived at the far end's media port), and the session walks SETUP →
// RINGING → IN_CALL → CALLER_HUNG_UP.
func TestCallRelaysPCMUBothWaysAndEndsOnCallerBye(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uacMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", uacMedia, uas.MediaPort()))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		MediaPort:  uacMedia,
		Service:    "1000",
		Keys:       map[string]string{"duration": "20000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	uacOK := uac.ExpectPass(t, 40*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if !uacOK || !uasOK {
		t.FailNow()
	}

	s := cc.snapshot(t, id)
	if s.Caller.Number != "sipp" || s.Callee.Number != "1000" || s.Dialled != "1000" {
		t.Errorf("session caller %q, callee %q, dialled %q; want sipp, 1000, 1000", s.Caller.Number, s.Callee.Number, s.Dialled)
	}

	// What each SIPp sent and what reached the other, from the capture.
	sentByCaller := uint64(peers.CountRTP(pkts, uint16(uacMedia), 0))
	sentByCallee := uint64(peers.CountRTP(pkts, uint16(uas.MediaPort()), 0))
	atCallee := uint64(peers.CountRTP(pkts, 0, uint16(uas.MediaPort())))
	atCaller := uint64(peers.CountRTP(pkts, 0, uint16(uacMedia)))
	caller, callee := leg(t, s, "caller"), leg(t, s, "callee")
	t.Logf("RTP caller→callee: sent %d, callctl in %d out %d, arrived %d", sentByCaller, caller.PacketsIn, callee.PacketsOut, atCallee)
	t.Logf("RTP callee→caller: sent %d, callctl in %d out %d, arrived %d", sentByCallee, callee.PacketsIn, caller.PacketsOut, atCaller)

	// 20 s of 20 ms packets is 1000; SIPp must really have streamed.
	if sentByCaller < 900 || sentByCallee < 900 {
		t.Fatalf("SIPp sent %d (caller) and %d (callee) RTP packets in 20 s; want ≥ 900 each (see %s)", sentByCaller, sentByCallee, capture.Path())
	}
	for _, c := range []struct {
		what      string
		got, sent uint64
	}{
		{"callctl received from the caller", caller.PacketsIn, sentByCaller},
		{"callctl sent to the callee", callee.PacketsOut, sentByCaller},
		{"the callee received", atCallee, sentByCaller},
		{"callctl received from the callee", callee.PacketsIn, sentByCallee},
		{"callctl sent to the caller", caller.PacketsOut, sentByCallee},
		{"the caller received", atCaller, sentByCallee},
	} {
		if !atLeast(c.got, c.sent, 0.95) {
			t.Errorf("%s %d RTP packets of %d sent; want ≥ 95%%", c.what, c.got, c.sent)
		}
	}
	cc.expectIdle(t)
}

// The callee hangs up: its BYE ends both legs (the caller's scenario passes
// only if a BYE reaches it) and the session ends CALLEE_HUNG_UP, with media
// relayed both ways while it lasted.
func TestCallEndsOnCalleeBye(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_pcmu_rtp_send_bye.xml"),
		Keys:     map[string]string{"duration": "3000"},
		Dir:      dir,
	})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeHungUp)

	// 3 s of 20 ms packets is 150 each way.
	s := cc.snapshot(t, id)
	caller, callee := leg(t, s, "caller"), leg(t, s, "callee")
	if caller.PacketsIn < 100 || callee.PacketsOut < 100 || callee.PacketsIn < 100 || caller.PacketsOut < 100 {
		t.Errorf("callctl relayed caller→callee %d→%d and callee→caller %d→%d RTP packets in 3 s; want ≥ 100 each",
			caller.PacketsIn, callee.PacketsOut, callee.PacketsIn, caller.PacketsOut)
	}
	cc.expectIdle(t)
}

// A caller reaching callctl over TCP is connected to a callee over UDP, and
// the callee's BYE travels back over the caller's TCP connection.
func TestCallerOverTCPReachesCalleeOverUDP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_pcmu_rtp_send_bye.xml"),
		Keys:     map[string]string{"duration": "1000"},
		Dir:      dir,
	})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Transport:  "t1",
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	if end := cc.WaitEnded(t, id, 5*time.Second); end.State != session.CalleeHungUp {
		t.Errorf("session ended %s; want %s", end.State, session.CalleeHungUp)
	}
	cc.expectIdle(t)
}

// A busy callee's 486 reaches the caller as 486 and the session ends BUSY.
func TestBusyCalleeEndsSessionBusyAnd486ReachesCaller(t *testing.T) {
	t.Parallel()
	refusedCall(t, "uas_busy.xml", "uac_expect_486.xml", session.Busy)
}

// A 404 from the far side reaches the caller as 404 and the session ends
// NOT_FOUND.
func TestUnknownNumberEndsSessionNotFoundAnd404ReachesCaller(t *testing.T) {
	t.Parallel()
	refusedCall(t, "uas_notfound.xml", "uac_expect_404.xml", session.NotFound)
}

// refusedCall runs a call the callee refuses: both scenarios pass (the
// caller got the code it expects, the callee got its ACK) and the session
// ends in want, having started in SETUP.
func refusedCall(t *testing.T, uasScenario, uacScenario string, want session.State) {
	t.Helper()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, uasScenario)})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, uacScenario),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})

	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	end := cc.WaitEnded(t, id, 5*time.Second)
	if end.State != want {
		t.Errorf("session ended %s (%s); want %s", end.State, end.Reason, want)
	}
	if walk := cc.Walk(id); len(walk) == 0 || walk[0] != session.Setup {
		t.Errorf("session went %v; want it to start in %s", walk, session.Setup)
	}
	cc.expectIdle(t)
}

// A callee that rings and never answers: after calls.ring_timeout callctl
// cancels the callee's leg (the callee's scenario passes only if a CANCEL
// reaches it), the caller gets 480 or 408, and the session ends
// NOT_ANSWERED.
func TestUnansweredCallEndsNotAnsweredAndCancelsCalleeLeg(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_ring_noanswer.xml")})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.RingTimeout = 2 * time.Second
	})
	start := time.Now()
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_480_or_408.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.Ringing, 5*time.Second)
	end := cc.WaitEnded(t, id, 10*time.Second)
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("call given up after %v; want the ring timeout of 2 s first", took)
	}
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	if end.State != session.NotAnswered {
		t.Errorf("session ended %s (%s); want %s", end.State, end.Reason, session.NotAnswered)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.NotAnswered)
	cc.expectIdle(t)
}

// The caller cancels while the callee rings: the caller's CANCEL gets 200
// and its INVITE 487, callctl cancels the callee's leg (the callee's
// scenario passes only if a CANCEL reaches it), and the session ends
// CANCELLED.
func TestCallerCancelWhileRingingEndsCancelledAndCancelsCalleeLeg(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_ring_noanswer.xml")})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_cancel.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})

	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.Cancelled)
	cc.expectIdle(t)
}

// The caller puts the callee on hold and takes it off again: each re-INVITE
// reaches the callee with the direction it had (a=sendonly, then
// a=sendrecv; checked by the callee's scenario, whose exit code says so), and
// the session goes CALLEE_ON_HOLD (docs/design.md: the caller holds the callee)
// and back to IN_CALL.
func TestCallerHoldReachesCalleeAsSendonlyThenSendrecv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_expect_hold.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_hold.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.CalleeOnHold, 10*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	if uas.ExpectPass(t, 10*time.Second) {
		t.Logf("callee saw: %s", strings.TrimSpace(uas.Actions()))
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeOnHold, session.InCall, session.CallerHungUp)
	cc.expectIdle(t)
}

// Two baresip softphones call each other through callctl: Alice (2001)
// dials 3002 at callctl, whose routing table sends 3xxx to Bob. Bob answers,
// audio flows both ways (callctl's counters and each phone's own RTP
// counters), Alice hangs up and both phones see the call closed.
func TestTwoBaresipPhonesTalkThroughCallctlAndHangUpCleanly(t *testing.T) {
	t.Parallel()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()}}
	})
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})

	if err := alice.Dial("sip:3002@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)

	// Wait for 2 s worth of audio (100 packets) relayed each way.
	var s session.Snapshot
	flowing := callctltest.Eventually(10*time.Second, func() bool {
		s = cc.snapshot(t, id)
		caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
		return caller.PacketsIn >= 100 && callee.PacketsOut >= 100 && callee.PacketsIn >= 100 && caller.PacketsOut >= 100
	})
	caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
	if !flowing {
		t.Errorf("after 10 s callctl relayed Alice→Bob %d→%d and Bob→Alice %d→%d RTP packets; want ≥ 100 each",
			caller.PacketsIn, callee.PacketsOut, callee.PacketsIn, caller.PacketsOut)
	}
	a, err := alice.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Alice sent %d received %d; Bob sent %d received %d; callctl relayed %d→%d and %d→%d",
		a.TxPackets, a.RxPackets, b.TxPackets, b.RxPackets, caller.PacketsIn, callee.PacketsOut, callee.PacketsIn, caller.PacketsOut)
	// The two reads are a few packets apart: allow 10% and 5 packets.
	if b.RxPackets < 100 || !atLeast(b.RxPackets+5, a.TxPackets, 0.9) {
		t.Errorf("Bob received %d RTP packets of the %d Alice sent; want ≥ 100 and ≥ 90%%", b.RxPackets, a.TxPackets)
	}
	if a.RxPackets < 100 || !atLeast(a.RxPackets+5, b.TxPackets, 0.9) {
		t.Errorf("Alice received %d RTP packets of the %d Bob sent; want ≥ 100 and ≥ 90%%", a.RxPackets, b.TxPackets)
	}

	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	}
	if e, err := bob.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	} else {
		t.Logf("Bob's call closed: %s", e.Param)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if s := cc.snapshot(t, id); s.Caller.Number != "2001" || s.Callee.Number != "3002" {
		t.Errorf("session caller %q, callee %q; want 2001, 3002", s.Caller.Number, s.Callee.Number)
	}
	cc.expectIdle(t)
}

// An INVITE from a source not on sip.allow gets 403 and a security log line
// naming the source, and no session is made.
// With sip.refused: 403 (by default such INVITEs are dropped unanswered,
// see internal/sip), a refused source gets one stateless 403 and the
// summary log names it.
func TestInviteFromSourceNotOnAllowListGets403WhenConfigured(t *testing.T) {
	t.Parallel()
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.SIP.Allow = []string{"127.0.0.2/32"}
		cfg.SIP.Refused = "403"
		cfg.SIP.LogInterval = time.Second
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_403.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	uac.ExpectPass(t, 20*time.Second)
	cc.expectLog(t, "about the refused source 127.0.0.1", func(line string) bool {
		return strings.Contains(line, "127.0.0.1") &&
			(strings.Contains(line, "allow") || strings.Contains(line, "forbidden") ||
				strings.Contains(line, "403") || strings.Contains(line, "security"))
	})
	if n := len(cc.app.Sessions().List()); n != 0 {
		t.Errorf("%d sessions made for a refused INVITE; want none", n)
	}
	cc.expectIdle(t)
}

// An INVITE whose SDP is malformed gets 488 and a log line about the SDP,
// and leaves no session or port behind.
func TestMalformedSDPGets488AndALogLine(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml")})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_bad_sdp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	uac.ExpectPass(t, 20*time.Second)
	cc.expectLog(t, "saying what was wrong with the SDP", func(line string) bool {
		return strings.Contains(line, "sdp") &&
			(strings.Contains(line, "o=") || strings.Contains(line, "notaport") ||
				strings.Contains(line, "origin") || strings.Contains(line, "port") ||
				strings.Contains(line, "syntax") || strings.Contains(line, "invalid"))
	})
	if msgs := uas.Messages(); strings.Contains(msgs, "INVITE sip:") {
		t.Errorf("the malformed offer reached the callee:\n%s", msgs)
	}
	cc.expectIdle(t)
}

// A BYE for a dialog callctl does not have gets 481 and makes no session.
func TestRequestInUnknownDialogGets481(t *testing.T) {
	t.Parallel()
	cc := startCallctl(t, nil)
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_unknown_dialog.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	uac.ExpectPass(t, 20*time.Second)
	if n := len(cc.app.Sessions().List()); n != 0 {
		t.Errorf("%d sessions made for an out-of-dialog BYE; want none", n)
	}
	cc.expectIdle(t)
}

// 200 calls one after another, then 50 at once, all with RTP, all pass and
// leave callctl as they found it: no live session, no RTP port allocated, no
// goroutine more than before the first call. Not parallel: it counts
// goroutines, so nothing else may run meanwhile.
func TestManyCallsLeaveNoSessionsPortsOrGoroutinesBehind(t *testing.T) {
	const sequential, concurrent = 200, 50
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"),
		Calls:    sequential + concurrent,
		Dir:      dir,
	})
	// 50 calls hold 100 RTP/RTCP pairs at once, plus the pairs resting.
	cc := startCallctlWithPorts(t, 300, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	baseline := settledGoroutines()

	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		Name:       "sequential",
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Calls:      sequential,
		Limit:      1, // one at a time
		Rate:       100,
		Keys:       map[string]string{"duration": "20"},
		Dir:        dir,
	})
	if !uac.ExpectPass(t, 120*time.Second) {
		t.FailNow()
	}
	uac = peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		Name:       "concurrent",
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Calls:      concurrent,
		Limit:      concurrent,
		Rate:       100,
		Keys:       map[string]string{"duration": "2000"},
		Dir:        dir,
	})
	uac.ExpectPass(t, 60*time.Second)
	uas.ExpectPass(t, 30*time.Second)

	hungUp := 0
	cc.WaitEvent(t, 20*time.Second, fmt.Sprintf("%d sessions ended by the caller", sequential+concurrent), func(e session.Event) bool {
		if e.State == session.CallerHungUp {
			hungUp++
		}
		return hungUp == sequential+concurrent
	})
	cc.expectIdle(t)
	if !callctltest.Eventually(10*time.Second, func() bool { return runtime.NumGoroutine() <= baseline }) {
		t.Errorf("%d goroutines after the calls; %d before them. Goroutines:\n%s", runtime.NumGoroutine(), baseline, goroutineDump())
	}
}

// settledGoroutines waits (up to 2 s) for the goroutine count to stop
// changing and returns it.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}
