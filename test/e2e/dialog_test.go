package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// Dialog-level SIP: reliable provisionals (RFC 3262), Require and 420
// (RFC 3261 8.2.2.3), session timers (RFC 4028) and in-dialog requests in
// CSeq order (RFC 3261 12.2.2), each against SIPp peers.

// testTimerUnit makes one second of Session-Expires last 50 ms, so a
// 90 s interval (the smallest RFC 4028 allows) runs in 4.5 s: refresh at
// 2.25 s, expiry check at 3 s.
const testTimerUnit = 50 * time.Millisecond

// receivedMessages is every message (requests and responses) SIPp
// received, from its message trace, in order.
func receivedMessages(s *peers.SIPp) []sipMessage {
	var out []sipMessage
	for _, block := range strings.Split(s.Messages(), "-----------------------------------------------")[1:] {
		_, rest, _ := strings.Cut(block, "\n")
		what, text, _ := strings.Cut(rest, "\n")
		m := sipMessage{Received: strings.Contains(what, "received"), Text: strings.TrimLeft(text, "\r\n")}
		if m.Received && strings.TrimSpace(m.Text) != "" {
			out = append(out, m)
		}
	}
	return out
}

// statusOf is a response's status line ("SIP/2.0 183 Session Progress"),
// "" for a request.
func statusOf(m sipMessage) string {
	first, _, _ := strings.Cut(m.Text, "\n")
	first = strings.TrimSpace(first)
	if !strings.HasPrefix(first, "SIP/2.0 ") {
		return ""
	}
	return first
}

// responses are the received responses whose status line starts with
// "SIP/2.0 <code>".
func responses(msgs []sipMessage, code string) []sipMessage {
	var out []sipMessage
	for _, m := range msgs {
		if strings.HasPrefix(statusOf(m), "SIP/2.0 "+code+" ") {
			out = append(out, m)
		}
	}
	return out
}

// bodyOf is a message's body.
func bodyOf(m sipMessage) string {
	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	_, body, _ := strings.Cut(text, "\n\n")
	return strings.TrimSpace(body)
}

// A callee's reliable 183 with SDP is PRACKed by callctl in its early
// dialog (RAck: 1 <INVITE's CSeq> INVITE), its retransmission is neither
// PRACKed again nor relayed again, and the call completes.
func TestReliable183FromCalleeIsPRACKedOnceAndCallCompletes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_reliable_183.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "1000"},
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if !uacOK || !uasOK {
		t.FailNow()
	}

	got := receivedRequests(uas)
	invite, _ := lastRequest(got, "INVITE")
	var pracks []sipMessage
	for _, m := range got {
		if m.Method() == "PRACK" {
			pracks = append(pracks, m)
		}
	}
	if len(pracks) != 1 {
		t.Fatalf("the callee received %d PRACKs; want 1 (methods %v)", len(pracks), methods(got))
	}
	seq, _, _ := strings.Cut(invite.Header("CSeq"), " ")
	if want := "1 " + seq + " INVITE"; pracks[0].Header("RAck") != want {
		t.Errorf("PRACK RAck %q; want %q (RFC 3262 7.2)", pracks[0].Header("RAck"), want)
	}
	if to := pracks[0].Header("To"); !strings.Contains(to, "SIPpTag01") {
		t.Errorf("PRACK To %q; want the 183's To tag (its early dialog)", to)
	}
	if n := len(responses(receivedMessages(uac), "183")); n != 1 {
		t.Errorf("the caller received %d 183s; want 1 (a retransmitted reliable 183 is not relayed again)", n)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
}

// A caller whose INVITE has Require: 100rel gets callctl's 180 reliably
// (Require: 100rel, RSeq), its PRACK is answered 200, and only then comes
// the 200 to the INVITE.
func TestCallerRequiring100relGetsReliable180AndItsPRACKAnswered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_require_100rel.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "1000"},
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if !uacOK || !uasOK {
		t.FailNow()
	}
	msgs := receivedMessages(uac)
	var order []string
	for _, m := range msgs {
		if s := statusOf(m); s != "" {
			order = append(order, strings.Fields(s)[1]+" "+m.Header("CSeq"))
		}
	}
	ringing := responses(msgs, "180")
	if len(ringing) == 0 {
		t.Fatalf("the caller got no 180; responses %v", order)
	}
	if r := ringing[0]; !strings.Contains(r.Header("Require"), "100rel") || r.Header("RSeq") == "" {
		t.Errorf("the 180 has Require %q and RSeq %q; want Require: 100rel and an RSeq (RFC 3262 3):\n%s", r.Header("Require"), r.Header("RSeq"), r.Text)
	}
	prackOK, inviteOK := -1, -1
	for i, o := range order {
		switch o {
		case "200 2 PRACK":
			prackOK = i
		case "200 1 INVITE":
			if inviteOK < 0 {
				inviteOK = i
			}
		}
	}
	if prackOK < 0 || inviteOK < 0 || prackOK > inviteOK {
		t.Errorf("the caller's responses were %v; want 200 to the PRACK, then 200 to the INVITE", order)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
}

// An INVITE requiring 100rel and an extension callctl does not have gets
// 420 with Unsupported naming only the unknown one (RFC 3261 8.2.2.3), and
// no session.
func TestInviteRequiringUnknownExtensionGets420NamingIt(t *testing.T) {
	t.Parallel()
	cc := startCallctl(t, nil)
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_require_foo.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	uacOK := uac.ExpectPass(t, 10*time.Second)
	bad := responses(receivedMessages(uac), "420")
	if len(bad) == 0 {
		t.Fatalf("the caller got no 420 (exit ok %v); messages:\n%s", uacOK, uac.Messages())
	}
	if u := bad[0].Header("Unsupported"); u != "foo" {
		t.Errorf("420 Unsupported %q; want foo alone (callctl supports 100rel)", u)
	}
	if n := countSessions(cc); n != 0 {
		t.Errorf("%d sessions after a 420; want none", n)
	}
	if !uacOK {
		t.Error("the caller's scenario failed")
	}
}

// The callee's 200 makes callctl the refresher (Session-Expires:
// 90;refresher=uac, Require: timer): callctl refreshes the callee's leg
// itself before it expires, with a re-INVITE carrying the SDP it sent
// before (the callee allows no UPDATE), and the caller never sees it.
func TestCallctlRefreshesCalleeLegItselfAndCallerNeverSeesIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_timer_refresher_uac.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.SessionTimerUnit = testTimerUnit // the caller's leg: 1800 s, 45 s here
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "3500"},
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if !uacOK || !uasOK {
		t.FailNow()
	}
	var invites []sipMessage
	for _, m := range receivedRequests(uas) {
		if m.Method() == "INVITE" {
			invites = append(invites, m)
		}
	}
	if len(invites) != 2 {
		t.Fatalf("the callee received %d INVITEs; want the call's and one refresh", len(invites))
	}
	if bodyOf(invites[1]) != bodyOf(invites[0]) {
		t.Errorf("the refresh re-INVITE's SDP differs from the one callctl sent before (RFC 3264 8: same o= version, no change):\n%s\n--- first:\n%s", bodyOf(invites[1]), bodyOf(invites[0]))
	}
	if got := methods(receivedRequests(uac)); len(got) != 0 {
		t.Errorf("the caller received requests %v; want none (a refresh is never relayed)", got)
	}
	cc.ExpectWalk(t, id, session.Setup, session.InCall, session.CallerHungUp)
}

// The caller takes on refreshing (Session-Expires: 90;refresher=uac) and
// then never refreshes: at the expiry (less min(32 s, interval/3), RFC 4028
// 10) callctl ends the call with BYE on both legs, the Reason saying why,
// and the session ends with that reason.
func TestPeerThatStopsRefreshingEndsCallWithByeOnBothLegs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.SessionTimerUnit = testTimerUnit
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_timer_no_refresh.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	in := cc.waitState(t, id, session.InCall, 10*time.Second)
	end := cc.WaitEnded(t, id, 10*time.Second)
	uacOK := uac.ExpectPass(t, 10*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	const why = "session timer expired on the caller's leg"
	if end.State != session.Error || end.Reason != why {
		t.Errorf("session ended %s (%q); want %s (%q)", end.State, end.Reason, session.Error, why)
	}
	if d := end.Time.Sub(in.Time); d < 2*time.Second || d > 4500*time.Millisecond {
		t.Errorf("the call ended %v after it was answered; want about 3 s (60 of the 90 test seconds)", d)
	}
	ok := responses(receivedMessages(uac), "200")
	if len(ok) == 0 || !strings.HasPrefix(ok[0].Header("Session-Expires"), "90;refresher=uac") || ok[0].Header("Require") != "timer" {
		t.Errorf("the caller's 200 had no Session-Expires: 90;refresher=uac with Require: timer")
	}
	for _, p := range []struct {
		party string
		s     *peers.SIPp
	}{{"caller", uac}, {"callee", uas}} {
		bye, found := lastRequest(receivedRequests(p.s), "BYE")
		if !found {
			t.Errorf("the %s received no BYE", p.party)
			continue
		}
		if r := bye.Header("Reason"); !strings.Contains(r, "cause=408") || !strings.Contains(r, why) {
			t.Errorf("the %s's BYE has Reason %q; want SIP cause 408 saying %q", p.party, r, why)
		}
	}
	if !uacOK || !uasOK {
		t.Error("a SIPp scenario failed")
	}
}

// Two INFOs of the caller arrive in reverse CSeq order (3, then 2 at
// once): both get 200 and the session sees them in CSeq order (the digits
// 1 then 2), where the older used to get 500; the callee (no
// telephone-event) gets them as INFO in that order too.
func TestInDialogRequestsArrivingReversedReachSessionInCSeqOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_accept_info.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_info_reversed.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	for _, m := range receivedMessages(uac) {
		if strings.HasPrefix(statusOf(m), "SIP/2.0 500") {
			t.Errorf("the caller got %s to %s", statusOf(m), m.Header("CSeq"))
		}
	}
	var digits strings.Builder
	for _, e := range cc.Seen {
		if e.Type == session.EventDTMFReceived && e.SessionID == id && e.DTMF != nil {
			digits.WriteString(e.DTMF.Digit)
		}
	}
	if digits.String() != "12" {
		t.Errorf("the session received digits %q; want \"12\" (CSeq 2, then 3)", digits.String())
	}
	if keys, durations := infoDigits(uas); keys != "12" || strings.Join(durations, ",") != "160,160" {
		t.Errorf("the callee got INFO digits %q with durations %v; want \"12\", each Duration=160 as the caller sent", keys, durations)
	}
	if !uacOK || !uasOK {
		t.Error("a SIPp scenario failed")
	}
}

// A callee answering 422 with Min-SE: 1900 gets a second INVITE (CSeq one
// higher) offering Session-Expires: 1900 (RFC 4028 7.4), and the call
// goes through; a caller offering less than callctl's Min-SE gets 422
// with Min-SE: 90 (RFC 4028 8.1).
func TestSessionIntervalTooSmallIsRetriedOnCalleeLegAndRefusedToCaller(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_422_min_se.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "500"},
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if !uacOK || !uasOK {
		t.FailNow()
	}
	var seqs []string
	for _, m := range receivedRequests(uas) {
		if m.Method() == "INVITE" {
			seqs = append(seqs, m.Header("CSeq"))
		}
	}
	if len(seqs) != 2 {
		t.Fatalf("the callee got INVITEs with CSeq %v; want two", seqs)
	}
	var first, second int
	fmt.Sscanf(seqs[0], "%d", &first)
	fmt.Sscanf(seqs[1], "%d", &second)
	if second != first+1 {
		t.Errorf("INVITE CSeqs %v; want the retry one higher", seqs)
	}

	short := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uac_require_foo.xml",
			"Require: 100rel, foo", "Session-Expires: 60",
			`<recv response="420">`, `<recv response="422">`,
			`regexp="^ *foo$" search_in="hdr" header="Unsupported:"`, `regexp="^ *90$" search_in="hdr" header="Min-SE:"`),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	shortOK := short.ExpectPass(t, 10*time.Second)
	tooSmall := responses(receivedMessages(short), "422")
	if len(tooSmall) == 0 || tooSmall[0].Header("Min-SE") != "90" {
		t.Errorf("a caller offering Session-Expires: 60 got no 422 with Min-SE: 90; messages:\n%s", short.Messages())
	}
	if !shortOK {
		t.Error("the short-interval caller's scenario failed")
	}
}
