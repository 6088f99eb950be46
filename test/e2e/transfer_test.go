package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// Transfers whose 202, NOTIFYs and BYE arrive in any order (issue 11 point
// 7), and the edges of point 10.

// The transferee of each order is a SIPp UAS (uas_refer_notify_before_202.xml
// or a variant) reached by its own number prefix.
// Where the UAS waits for callctl's 200 to its NOTIFY before it answers the
// REFER, it speaks TCP: over UDP callctl would rightly retransmit the REFER
// meanwhile on a loaded machine, which the scenario cannot absorb.
var notifyOrders = []struct {
	name, prefix string
	transport    string // the UAS's: "udp" or "tcp"
	calls        int
	variant      func(t *testing.T) []string // scenarioVariant pairs
}{
	// NOTIFY 200 (terminated), callctl answers it, then the 202, then BYE.
	{"NOTIFY 200 handled before the 202", "1", "tcp", 8, nil},
	// 202 and NOTIFY 200 back to back, the same-millisecond race of
	// FreeSWITCH; then BYE.
	{"202 and NOTIFY 200 back to back", "2", "udp", 8, func(t *testing.T) []string {
		block := scenarioBlock(t, "uas_refer_notify_before_202.xml", "<!-- 202 -->", "<!-- /202 -->")
		return []string{block, "", "<!-- 202-EARLY -->", block}
	}},
	// NOTIFY 100 (active), then 202 and BYE back to back: the transferee
	// leaves before any final NOTIFY.
	{"NOTIFY 100, then 202 and BYE, no final NOTIFY", "3", "tcp", 4, func(*testing.T) []string {
		return []string{"Subscription-State: terminated;reason=noresource", "Subscription-State: active;expires=60",
			"      SIP/2.0 200 OK\n    ]]>", "      SIP/2.0 100 Trying\n    ]]>"}
	}},
}

// scenarioBlock is the text of a scenario from begin to end, both included.
func scenarioBlock(t *testing.T, name, begin, end string) string {
	t.Helper()
	data, err := sipp.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s … %s block", name, begin, end)
	}
	return text[i : j+len(end)]
}

// A client blind-transfers calls to transferees that report the outcome in
// every order a real one does: the NOTIFY with sipfrag 200 before the 202
// (handled first), the 202 and the NOTIFY racing, or a NOTIFY 100 and the
// BYE with no final NOTIFY at all. Twenty calls in all, one at a time; for each the operation
// returns OK, the session walks TRANSFER_REQUESTED → TRANSFERRING →
// TRANSFER_COMPLETED and ends there with its event, the transferor (the SIPp
// caller) gets BYE and every transferee scenario passes (callctl answered
// its NOTIFY and BYE 200).
func TestBlindTransferOutcomeIsRightWhateverOrderNotify202AndByeArrive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	var routes []config.Route
	var uases []*peers.SIPp
	for _, m := range notifyOrders {
		scenario := sipp.Scenario(t, "uas_refer_notify_before_202.xml")
		if m.variant != nil {
			scenario = scenarioVariant(t, "uas_refer_notify_before_202.xml", m.variant(t)...)
		}
		sippTransport := map[string]string{"udp": "u1", "tcp": "t1"}[m.transport]
		uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: scenario, Dir: dir, Calls: m.calls, Transport: sippTransport})
		uases = append(uases, uas)
		routes = append(routes, config.Route{Match: "^" + m.prefix + `\d+$`, Target: "sip:{number}@" + uas.LocalAddr(), Transport: m.transport})
	}
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uases[0].LocalAddr()
		cfg.Routes = routes
		cfg.Calls.TransferTimeout = 5 * time.Second
		cfg.Calls.TransferGrace = 3 * time.Second
	})

	seen := map[string]bool{}
	for mi, m := range notifyOrders {
		uac := peers.StartSIPp(t, peers.SIPpOptions{
			Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
			RemoteAddr: cc.addr(),
			Service:    m.prefix + "000",
			Calls:      m.calls,
			Limit:      1,
			Dir:        dir,
		})
		for i := 0; i < m.calls; i++ {
			what := fmt.Sprintf("%s, call %d", m.name, i+1)
			id := cc.WaitEvent(t, 10*time.Second, what+": a new session in call", func(e session.Event) bool {
				return e.Type == session.EventStateChanged && e.State == session.InCall && !seen[e.SessionID]
			}).SessionID
			seen[id] = true
			// The caller's SIPp must be waiting for its BYE before the
			// transfer (it aborts on a BYE while it still sends its ACK).
			time.Sleep(200 * time.Millisecond)
			if err := cc.app.Engine().BlindTransfer(opContext(t), id, "sipp", "4000"); err != nil {
				t.Errorf("%s: BlindTransfer: %v; want nil (the transferee reported 200)", what, err)
			}
			end := cc.WaitEnded(t, id, 8*time.Second)
			if end.State != session.TransferCompleted {
				t.Errorf("%s: session ended %s (%s); want %s", what, end.State, end.Reason, session.TransferCompleted)
			}
			walk := cc.Walk(id)
			if !containsRun(walk, session.InCall, session.TransferRequested, session.Transferring, session.TransferCompleted) {
				t.Errorf("%s: session went %v; want … %s → %s → %s → %s", what, walk, session.InCall,
					session.TransferRequested, session.Transferring, session.TransferCompleted)
			}
			if slices.Contains(walk, session.TransferFailed) {
				t.Errorf("%s: session went %v; want no %s", what, walk, session.TransferFailed)
			}
			if s := cc.snapshot(t, id); s.Transfer == nil || s.Transfer.Target != "4000" {
				t.Errorf("%s: transfer info %+v; want target 4000", what, s.Transfer)
			}
		}
		if !uac.ExpectPass(t, 10*time.Second) {
			t.Errorf("%s: the transferor did not get its BYE on every call", m.name)
		}
		if !uases[mi].ExpectPass(t, 10*time.Second) {
			t.Errorf("%s: a transferee scenario failed (NOTIFY or BYE not answered 200): %s", m.name, uases[mi].Errors())
		}
	}
	cc.expectIdle(t)
}

// The transferee refuses REFER with 603 Decline: that is its decision, not a
// lack of REFER support, so callctl does not connect the target itself (the
// target, a SIPp UAS, is never called: its scenario does not pass), the
// operation fails as refused with 603, the session goes TRANSFER_FAILED and
// back to IN_CALL, and the call goes on until the client hangs up.
func TestBlindTransferDeclinedWith603IsRespectedWithoutFallback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: scenarioVariant(t, "uas_refuse_refer_405.xml",
		"405 Method Not Allowed", "603 Decline"), Dir: dir})
	target := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.TransferTimeout = 5 * time.Second
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)

	targetURI := "sip:4000@" + target.LocalAddr()
	err := cc.app.Engine().BlindTransfer(opContext(t), id, "sipp", targetURI)
	t.Logf("BlindTransfer: %v", err)
	if opErr := expectOpError(t, "BlindTransfer declined with 603", err, session.CodePeerRefused, ""); opErr != nil && opErr.Status != 603 {
		t.Errorf("BlindTransfer error status %d; want 603", opErr.Status)
	}
	failed := cc.waitState(t, id, session.TransferFailed, 5*time.Second)
	cc.waitStateAfter(t, id, session.InCall, failed, 5*time.Second)
	time.Sleep(time.Second) // a fallback INVITE to the target would be there by now
	if s := cc.snapshot(t, id); s.State != session.InCall || s.Caller.Number != "sipp" || s.Callee.Number != "1000" {
		t.Errorf("after the 603 the session is %s between %s and %s; want %s between sipp and 1000", s.State, s.Caller.Number, s.Callee.Number, session.InCall)
	}
	if msgs := target.Messages(); strings.Contains(msgs, "INVITE sip:") {
		t.Errorf("the target was called after the transferee declined REFER with 603 (no fallback wanted):\n%s", msgs)
	}
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	target.Stop()
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.TransferFailed,
		session.InCall, session.HungUp)
	cc.expectIdle(t)
}

// The callee hangs up while the caller's re-INVITE (a hold, relayed by
// callctl) waits for its answer, and says why: Reason Q.850 cause 16. The
// caller's re-INVITE is ended with 487 within 2 s (RFC 3261 15.1.2) instead
// of being left to time out, and the BYE callctl sends the caller carries
// the callee's Reason (RFC 3326), not callctl's own. Both SIPp scenarios
// check their side of the ladder; the session ends CALLEE_HUNG_UP.
func TestByeCrossingARelayedReinviteEndsItWith487AndCarriesTheReason(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_bye_during_reinvite.xml"),
		Dir:      dir,
	})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_reinvite_crossed_by_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 15*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeHungUp)
	var byes []sipMessage
	for _, m := range receivedRequests(uac) {
		if m.Method() == "BYE" {
			byes = append(byes, m)
		}
	}
	if len(byes) != 1 {
		t.Fatalf("the caller received %d BYEs; want 1", len(byes))
	}
	if r := byes[0].Header("Reason"); !strings.Contains(r, "cause=16") || strings.Contains(r, "peer hung up") {
		t.Errorf("BYE to the caller has Reason %q; want the callee's Q.850;cause=16", r)
	}
	cc.expectIdle(t)
}
