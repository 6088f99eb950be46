package pbx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// opTimeout bounds one operation on the session engine; a transfer waits
// for the transferee's final NOTIFY.
const opTimeout = 20 * time.Second

func opContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Issue 7's acceptance: Kamailio from configs/kamailio/ is registrar and
// record-routing proxy for three baresip phones, alice (2001), bob (3002)
// and carol (4003), and callctl's trunk. Alice dials 3002 at Kamailio:
//
//	alice ─INVITE 3002→ Kamailio ─→ callctl ─INVITE 3002→ Kamailio ─→ bob
//
// The call is a session 2001 → 3002 with audio both ways. A client holds it
// and resumes it: callctl's re-INVITEs reach both phones through Kamailio
// (loose routing on the Record-Route of each dialog). A client then
// transfers bob to 4003, alice being the transferor: callctl's REFER
// reaches bob through Kamailio, bob's INVITE to 4003 comes back through
// Kamailio and callctl (a second session) to carol, bob's NOTIFY 200 ends
// the first session TRANSFER_COMPLETED and alice's call. Carol hangs up;
// every phone is left with no call and callctl with no session or port.
func TestCallBetweenPhonesRegisteredToKamailioGoesThroughCallctlHoldsAndTransfers(t *testing.T) {
	callctlPort := peers.FreeUDPPort(t)
	kam := startKamailio(t, callctlPort)
	alice := startPhone(t, "2001", kam)
	bob := startPhone(t, "3002", kam)
	carol := startPhone(t, "4003", kam)
	cc := startCallctl(t, callctlPort, kam.addr(), func(cfg *config.Config) {
		cfg.Calls.TransferTimeout = 15 * time.Second
		cfg.Calls.TransferGrace = 2 * time.Second
	})
	isInvite := func(m sipMessage) bool { return m.Request("INVITE") }

	// The call: alice → Kamailio → callctl → Kamailio → bob.
	if err := alice.Dial("sip:3002@" + kam.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	first := cc.WaitEvent(t, time.Second, "a session", func(session.Event) bool { return true })
	id := first.SessionID
	talking := cc.waitState(t, id, session.InCall, nil, 5*time.Second)
	if s := cc.snapshot(t, id); s.Caller.Number != "2001" || s.Callee.Number != "3002" {
		t.Errorf("session caller %q, callee %q; want 2001 (alice), 3002 (bob)", s.Caller.Number, s.Callee.Number)
	}
	toCallctl := kam.waitRelayed(t, "alice's INVITE", alice.sipPort, callctlPort, 2*time.Second, isInvite)
	if !strings.HasPrefix(toCallctl.Start, "INVITE sip:3002@") {
		t.Errorf("Kamailio relayed alice's INVITE to callctl as %q; want the Request-URI kept (sip:3002@...)", toCallctl.Start)
	}
	kam.waitRelayed(t, "callctl's INVITE", callctlPort, bob.sipPort, 2*time.Second, isInvite)

	// Audio both ways: 2 s (100 packets) relayed each way, and each phone
	// receives what the other sends.
	var s session.Snapshot
	if !callctltest.Eventually(10*time.Second, func() bool {
		s = cc.snapshot(t, id)
		caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
		return caller.PacketsIn >= 100 && callee.PacketsOut >= 100 && callee.PacketsIn >= 100 && caller.PacketsOut >= 100
	}) {
		t.Errorf("callctl relayed alice→bob %d→%d and bob→alice %d→%d RTP packets in 10 s; want ≥ 100 each",
			callctltest.LegStats(s, "caller").PacketsIn, callctltest.LegStats(s, "callee").PacketsOut, callctltest.LegStats(s, "callee").PacketsIn, callctltest.LegStats(s, "caller").PacketsOut)
	}
	for _, p := range []*phone{alice, bob} {
		st, err := p.AudioStats()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s sent %d and received %d RTP packets", p.user, st.TxPackets, st.RxPackets)
		if st.RxPackets < 100 || st.TxPackets < 100 {
			t.Errorf("%s sent %d and received %d RTP packets; want ≥ 100 each", p.user, st.TxPackets, st.RxPackets)
		}
	}

	// Hold: callctl re-INVITEs each phone with a=sendonly, through Kamailio.
	if err := cc.app.Engine().Hold(opContext(t), id); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	held := cc.waitState(t, id, session.OnHold, &talking, 2*time.Second)
	for _, p := range []*phone{alice, bob} {
		m := kam.waitRelayed(t, "callctl's hold re-INVITE to "+p.user, callctlPort, p.sipPort, 2*time.Second, func(m sipMessage) bool {
			return isInvite(m) && m.Header("To") != "" && strings.Contains(m.Header("To"), "tag=") && sdpHas(m, "a=sendonly")
		})
		t.Logf("hold re-INVITE to %s: %s", p.user, m.Start)
	}

	// Unhold: a=sendrecv to each, through Kamailio; audio flows again.
	time.Sleep(500 * time.Millisecond)
	if err := cc.app.Engine().Unhold(opContext(t), id); err != nil {
		t.Fatalf("Unhold: %v", err)
	}
	cc.waitState(t, id, session.InCall, &held, 2*time.Second)
	for _, p := range []*phone{alice, bob} {
		kam.waitRelayed(t, "callctl's unhold re-INVITE to "+p.user, callctlPort, p.sipPort, 2*time.Second, func(m sipMessage) bool {
			return isInvite(m) && strings.Contains(m.Header("To"), "tag=") && sdpHas(m, "a=sendrecv") && m.Time.After(held.Time.Add(-time.Second))
		})
	}
	before := cc.snapshot(t, id)
	time.Sleep(time.Second)
	after := cc.snapshot(t, id)
	for _, role := range []string{"caller", "callee"} {
		in0, in1 := callctltest.LegStats(before, role).PacketsIn, callctltest.LegStats(after, role).PacketsIn
		if in1 < in0+30 {
			t.Errorf("after the unhold callctl received %d RTP packets from the %s in 1 s; want ≥ 30", in1-in0, role)
		}
	}

	// Blind transfer of bob to 4003 (carol), alice being the transferor:
	// REFER to bob through Kamailio; bob calls 4003 through Kamailio and
	// callctl; bob's NOTIFY 200 completes the transfer.
	if err := cc.app.Engine().BlindTransfer(opContext(t), id, "2001", "4003"); err != nil {
		t.Errorf("BlindTransfer(2001 → 4003): %v; want nil once carol answered", err)
	}
	refer := kam.waitRelayed(t, "callctl's REFER to bob", callctlPort, bob.sipPort, 2*time.Second, func(m sipMessage) bool { return m.Request("REFER") })
	if rt := refer.Header("Refer-To"); !strings.Contains(rt, "4003") {
		t.Errorf("REFER to bob has Refer-To %q; want the target 4003", rt)
	}
	kam.waitRelayed(t, "bob's NOTIFY to callctl", bob.sipPort, callctlPort, 2*time.Second, func(m sipMessage) bool { return m.Request("NOTIFY") })
	end := cc.WaitEnded(t, id, 5*time.Second)
	if end.State != session.TransferCompleted {
		t.Errorf("the first session ended %s (%s); want %s", end.State, end.Reason, session.TransferCompleted)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.OnHold, session.InCall,
		session.TransferRequested, session.Transferring, session.TransferCompleted)
	if e, err := alice.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Errorf("alice (the transferor): %v", err)
	} else {
		t.Logf("alice's call closed: %s", e.Param)
	}

	// The transferred call, bob → carol, is a second session through
	// callctl, with audio.
	if _, err := carol.WaitEvent(peers.EventCallEstablished, 5*time.Second); err != nil {
		t.Fatalf("carol: %v", err)
	}
	second := cc.WaitEvent(t, 5*time.Second, "the transferred call's session", func(e session.Event) bool {
		return e.SessionID != id && e.Type == session.EventStateChanged && e.State == session.InCall
	})
	if s := cc.snapshot(t, second.SessionID); s.Caller.Number != "3002" || s.Callee.Number != "4003" {
		t.Errorf("transferred call's session: caller %q, callee %q; want 3002 (bob), 4003 (carol)", s.Caller.Number, s.Callee.Number)
	}
	kam.waitRelayed(t, "bob's INVITE to 4003", bob.sipPort, callctlPort, time.Second, func(m sipMessage) bool {
		return isInvite(m) && strings.HasPrefix(m.Start, "INVITE sip:4003@")
	})
	kam.waitRelayed(t, "callctl's INVITE to carol", callctlPort, carol.sipPort, time.Second, isInvite)
	// bob's first call (with callctl's B leg) ends: by bob, or by callctl
	// after calls.transfer_grace.
	if !callctltest.Eventually(cc.cfg.Calls.TransferGrace+5*time.Second, func() bool {
		calls, _ := bob.ListCalls()
		return strings.Contains(calls, "Active calls (1)")
	}) {
		calls, _ := bob.ListCalls()
		t.Errorf("bob's calls after the transfer: %q; want only the call to carol", calls)
	}
	var s2 session.Snapshot
	if !callctltest.Eventually(5*time.Second, func() bool {
		s2 = cc.snapshot(t, second.SessionID)
		return callctltest.LegStats(s2, "caller").PacketsIn >= 50 && callctltest.LegStats(s2, "callee").PacketsIn >= 50
	}) {
		t.Errorf("transferred call: callctl received %d RTP packets from bob and %d from carol; want ≥ 50 each",
			callctltest.LegStats(s2, "caller").PacketsIn, callctltest.LegStats(s2, "callee").PacketsIn)
	}

	// Carol hangs up: BYE through Kamailio to callctl, and on to bob.
	if err := carol.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEventFunc(func(e peers.BaresipEvent) bool {
		return e.Type == peers.EventCallClosed && strings.Contains(e.PeerURI, "4003")
	}, "bob's call to 4003 closed", 5*time.Second); err != nil {
		t.Error(err)
	}
	if ended := cc.WaitEnded(t, second.SessionID, 5*time.Second); ended.State != session.CalleeHungUp {
		t.Errorf("the transferred call's session ended %s; want %s", ended.State, session.CalleeHungUp)
	}
	for _, p := range []*phone{alice, bob, carol} {
		p.expectNoCalls(t)
	}
	cc.expectIdle(t)
	if t.Failed() || testing.Verbose() {
		t.Logf("SIP ladder at Kamailio:\n%s", kam.Ladder(t))
	}
}

// A phone dials a number nobody registered: the INVITE goes through
// callctl, callctl's B leg comes back to Kamailio, which answers 404 from
// its location table (and does not send callctl's own INVITE back to
// callctl: no loop). The session ends NOT_FOUND and the caller gets 404.
func TestCallToUnregisteredNumberThroughKamailioEndsNotFound(t *testing.T) {
	callctlPort := peers.FreeUDPPort(t)
	kam := startKamailio(t, callctlPort)
	alice := startPhone(t, "2001", kam)
	cc := startCallctl(t, callctlPort, kam.addr(), nil)

	if err := alice.Dial("sip:5999@" + kam.addr()); err != nil {
		t.Fatal(err)
	}
	e, err := alice.WaitEvent(peers.EventCallClosed, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Param, "Not Found") {
		t.Errorf("alice's call closed with %q; want 404 Not Found", e.Param)
	}
	id := cc.WaitEvent(t, time.Second, "a session", func(session.Event) bool { return true }).SessionID
	if end := cc.WaitEnded(t, id, 5*time.Second); end.State != session.NotFound {
		t.Errorf("session ended %s (%s); want %s", end.State, end.Reason, session.NotFound)
	}
	// callctl's B leg reached Kamailio and was answered 404 there, never
	// relayed back to callctl.
	msgs := kam.Messages(t)
	fromCallctl := map[string]bool{}
	for _, m := range msgs {
		if !m.Sent && m.SrcPort == callctlPort && m.Request("INVITE") {
			fromCallctl[m.CallID] = true
		}
	}
	if len(fromCallctl) != 1 {
		t.Errorf("Kamailio received %d INVITEs from callctl; want 1 (the B leg)", len(fromCallctl))
	}
	for _, m := range msgs {
		if m.Sent && m.DstPort == callctlPort && m.Request("INVITE") && fromCallctl[m.CallID] {
			t.Errorf("Kamailio sent callctl's own INVITE back to callctl (a loop): %s Call-ID %s", m.Start, m.CallID)
		}
	}
	kam.waitSent(t, "Kamailio's 404 to callctl's INVITE", callctlPort, time.Second, func(m sipMessage) bool {
		return m.Status == 404 && m.Method == "INVITE" && fromCallctl[m.CallID]
	})
	alice.expectNoCalls(t)
	cc.expectIdle(t)
}

// Kamailio's dispatcher section (WITH_DISPATCHER) spreads calls over two
// callctl nodes: alice calls bob twice, the first call through one node and
// the second through the other (round-robin), and each node's B leg is
// recognised as a callctl node's and relayed to bob, not dispatched to a
// callctl again (each node makes exactly one session, 2001 → 3002).
func TestKamailioDispatcherSpreadsCallsOverTwoCallctlNodes(t *testing.T) {
	portA, portB := peers.FreeUDPPort(t), peers.FreeUDPPort(t)
	kam := startKamailio(t, portA, portB)
	alice := startPhone(t, "2001", kam)
	bob := startPhone(t, "3002", kam)
	nodes := []*callctl{
		startCallctl(t, portA, kam.addr(), nil),
		startCallctl(t, portB, kam.addr(), nil),
	}

	for call := 1; call <= 2; call++ {
		if err := alice.Dial("sip:3002@" + kam.addr()); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := alice.Hangup(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*phone{alice, bob} {
			if _, err := p.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
				t.Fatalf("call %d: %s: %v", call, p.user, err)
			}
		}
	}

	for i, n := range nodes {
		n.expectIdle(t)
		list := n.app.Sessions().List()
		if len(list) != 1 {
			t.Errorf("callctl node %d has %d sessions; want 1 (round-robin, and no B leg dispatched to a callctl again)", i+1, len(list))
			continue
		}
		if s := list[0]; s.Caller.Number != "2001" || s.Callee.Number != "3002" || s.State != session.CallerHungUp {
			t.Errorf("callctl node %d's session: %s → %s, %s; want 2001 → 3002, %s", i+1, s.Caller.Number, s.Callee.Number, s.State, session.CallerHungUp)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("SIP ladder at Kamailio:\n%s", kam.Ladder(t))
	}
}

// A callctl node that is draining (SIGTERM: it refuses new calls with 503)
// is skipped: Kamailio's failure route tries the next node, so both of
// alice's calls are connected by the other node, and the draining one makes
// no session.
func TestKamailioDispatcherFailsOverFromADrainingCallctlNode(t *testing.T) {
	portA, portB := peers.FreeUDPPort(t), peers.FreeUDPPort(t)
	kam := startKamailio(t, portA, portB)
	alice := startPhone(t, "2001", kam)
	bob := startPhone(t, "3002", kam)
	draining := startCallctl(t, portA, kam.addr(), nil)
	serving := startCallctl(t, portB, kam.addr(), nil)
	draining.app.Engine().Drain()

	for call := 1; call <= 2; call++ {
		if err := alice.Dial("sip:3002@" + kam.addr()); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		if _, err := bob.WaitEvent(peers.EventCallEstablished, 5*time.Second); err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		if err := alice.Hangup(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*phone{alice, bob} {
			if _, err := p.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
				t.Fatalf("call %d: %s: %v", call, p.user, err)
			}
		}
	}

	// Round-robin offered one of the two calls to the draining node, which
	// refused it with 503; Kamailio sent it on to the other node.
	refused := 0
	for _, m := range kam.Messages(t) {
		if !m.Sent && m.SrcPort == portA && m.Status == 503 && m.Method == "INVITE" {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("the draining node refused %d INVITEs with 503; want 1 (round-robin offers it one of the two calls)", refused)
	}
	if n := len(draining.app.Sessions().List()); n != 0 {
		t.Errorf("the draining node made %d sessions; want 0", n)
	}
	list := serving.app.Sessions().List()
	if len(list) != 2 {
		t.Errorf("the serving node made %d sessions; want 2 (both calls)", len(list))
	}
	for _, s := range list {
		if s.Caller.Number != "2001" || s.Callee.Number != "3002" {
			t.Errorf("serving node's session %s: %s → %s; want 2001 → 3002", s.ID, s.Caller.Number, s.Callee.Number)
		}
	}
	serving.expectIdle(t)
	if t.Failed() || testing.Verbose() {
		t.Logf("SIP ladder at Kamailio:\n%s", kam.Ladder(t))
	}
}
