package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// Digits a party sends reach the other party, as RFC 4733 events or SIP
// INFO per what that party negotiated, and each becomes one DTMF_RECEIVED
// (issue 11 point 8).

// pressKeys has a baresip phone press every key of keys (sndcode, RFC 4733).
func pressKeys(t *testing.T, b *peers.Baresip, keys string) {
	t.Helper()
	for _, k := range keys {
		if _, err := b.Command("sndcode", string(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// expectDTMFReceived waits for len(want) DTMF_RECEIVED events of the
// session, then a moment more for a duplicate, and checks their digits,
// in order, and that each names the party and role.
func expectDTMFReceived(t *testing.T, cc *callctl, id, want, party, role string) {
	t.Helper()
	n := 0
	cc.WaitEvent(t, 10*time.Second, fmt.Sprintf("%d DTMF_RECEIVED events", len(want)), func(e session.Event) bool {
		if e.Type == session.EventDTMFReceived && e.SessionID == id {
			n++
		}
		return n == len(want)
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would have come by now
	cc.Drain()
	var digits strings.Builder
	for _, e := range cc.Seen {
		if e.Type != session.EventDTMFReceived || e.SessionID != id || e.DTMF == nil {
			continue
		}
		digits.WriteString(e.DTMF.Digit)
		if e.DTMF.Party != party || e.DTMF.Role != role {
			t.Errorf("DTMF_RECEIVED %+v; want party %s, role %s", *e.DTMF, party, role)
		}
	}
	if digits.String() != want {
		t.Errorf("DTMF_RECEIVED digits %q; want %q, each once, in order", digits.String(), want)
	}
}

// infoDigits lists the Signal of each INFO application/dtmf-relay a SIPp
// party received, in order, with its Duration.
func infoDigits(s *peers.SIPp) (keys string, durations []string) {
	re := regexp.MustCompile(`(?i)Signal= *(\S+)\s+Duration= *(\d+)`)
	var b strings.Builder
	for _, m := range receivedRequests(s) {
		if m.Method() != "INFO" {
			continue
		}
		if sm := re.FindStringSubmatch(m.Text); sm != nil {
			b.WriteString(sm[1])
			durations = append(durations, sm[2])
		}
	}
	return b.String(), durations
}

// The caller (baresip) presses every key as RFC 4733 events: each becomes
// one caller-role DTMF_RECEIVED, in order, and reaches the callee (baresip,
// telephone-event too) in the relayed RTP, which reports each key once, in
// order. The caller's leg used to have no detector at all.
func TestCallerRFC4733DigitsReachBaresipCalleeAndBecomeCallerEvents(t *testing.T) {
	t.Parallel()
	alice, bob, cc, id := twoBaresipPhones(t)
	pressKeys(t, alice, allKeys)
	if got := dtmfDigits(bob, len(allKeys), 5*time.Second, 500*time.Millisecond); got != allKeys {
		t.Errorf("the callee (baresip) reported DTMF keys %q; want %q, each once, in order", got, allKeys)
	}
	expectDTMFReceived(t, cc, id, allKeys, "2001", "caller")
	if got := dtmfDigits(alice, 1, 0, 0); got != "" {
		t.Errorf("the caller reported DTMF keys %q; want none (it sent them)", got)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// A baresip caller with telephone-event calls a SIPp callee without it:
// callctl keeps telephone-event in the answer to the caller, whose RFC 4733
// keys then reach the callee as one INFO application/dtmf-relay each, in
// order, with Duration=100 (uas_expect_dtmf_info.xml checks every one), and
// none of the events reaches the callee's RTP port as an unknown payload
// type.
func TestRFC4733FromBaresipReachesSIPpWithoutTelephoneEventAsInfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_expect_dtmf_info.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})
	if err := alice.Dial("sip:1000@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and dst port %d", uas.MediaPort()))
	pressKeys(t, alice, allKeys)
	expectDTMFReceived(t, cc, id, allKeys, "2001", "caller")
	time.Sleep(500 * time.Millisecond) // the last INFO's pacing
	pkts := capture.Stop(t)
	if ev := rfc4733Events(pkts); len(ev) != 0 {
		t.Errorf("%d RFC 4733 events reached the callee, whose SDP has no telephone-event; want none", len(ev))
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	uas.ExpectPass(t, 10*time.Second)
	if keys, _ := infoDigits(uas); keys != allKeys {
		t.Errorf("the callee got INFO digits %q; want %q", keys, allKeys)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// A SIPp caller (telephone-event offered, but pressing keys by INFO) calls
// a baresip callee with telephone-event: each INFO is answered 200, becomes
// one caller-role DTMF_RECEIVED, and reaches the callee as RFC 4733 events,
// which it reports once each, in order.
func TestInfoFromSIPpReachesBaresipCalleeAsRFC4733(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()}}
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_send_dtmf_info.xml"),
		RemoteAddr: cc.addr(),
		Service:    "3002",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	if got := dtmfDigits(bob, len(allKeys), 10*time.Second, 500*time.Millisecond); got != allKeys {
		t.Errorf("the callee (baresip) reported DTMF keys %q; want %q, each once, in order", got, allKeys)
	}
	expectDTMFReceived(t, cc, id, allKeys, "sipp", "caller")
	uac.ExpectPass(t, 20*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// Both parties SIPp, neither with telephone-event: the caller's INFOs reach
// the callee as INFO, in order, with their Duration (uas_expect_dtmf_info.xml
// checks every one).
func TestInfoFromSIPpReachesSIPpWithoutTelephoneEventAsInfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_expect_dtmf_info.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uac_send_dtmf_info.xml",
			"RTP/AVP 0 101", "RTP/AVP 0",
			"      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15\n", ""),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	expectDTMFReceived(t, cc, id, allKeys, "sipp", "caller")
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	if keys, _ := infoDigits(uas); keys != allKeys {
		t.Errorf("the callee got INFO digits %q; want %q", keys, allKeys)
	}
	if !uacOK || !uasOK {
		t.Error("a SIPp scenario failed")
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// A baresip caller (telephone-event 101) calls a SIPp callee that answers
// with telephone-event as 96: the caller's RFC 4733 keys reach the callee's
// RTP port as payload type 96, never 101, every key once, in order; each
// is one caller-role DTMF_RECEIVED.
func TestRFC4733ReachesACalleeWithAnotherTelephoneEventTypeRewritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Dir: dir, Scenario: scenarioVariant(t, "uas_pcmu_rtp.xml",
		"      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000\n",
		"      m=audio [media_port] RTP/AVP 0 96\n      a=rtpmap:0 PCMU/8000\n      a=rtpmap:96 telephone-event/8000\n      a=fmtp:96 0-15\n")})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})
	if err := alice.Dial("sip:1000@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and dst port %d", uas.MediaPort()))
	pressKeys(t, alice, allKeys)
	expectDTMFReceived(t, cc, id, allKeys, "2001", "caller")
	pkts := capture.Stop(t)
	wrong := 0
	for _, p := range pkts {
		if p.RTPPayloadType() == 101 {
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d packets of payload type 101 (the caller's telephone-event) reached the callee, whose type is 96", wrong)
	}
	var keys strings.Builder
	for _, e := range rfc4733Events(pkts) {
		keys.WriteByte("0123456789*#ABCD"[min(int(e.code), 15)])
	}
	if keys.String() != allKeys {
		t.Errorf("RFC 4733 events toward the callee were for keys %q; want %q", keys.String(), allKeys)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// The SIPp caller's twelve INFOs come back to back (each as soon as the
// previous got its 200): they queue for the baresip callee and reach it as
// RFC 4733 events one after another, every key once, in order.
func TestInfosInQuickSuccessionReachBaresipInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()}}
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uac_send_dtmf_info.xml",
			`<pause milliseconds="300"/>`, `<pause milliseconds="5"/>`,
			`<pause milliseconds="3000"/>`, `<pause milliseconds="6000"/>`),
		RemoteAddr: cc.addr(),
		Service:    "3002",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	expectDTMFReceived(t, cc, id, allKeys, "sipp", "caller")
	if got := dtmfDigits(bob, len(allKeys), 8*time.Second, 500*time.Millisecond); got != allKeys {
		t.Errorf("the callee (baresip) reported DTMF keys %q; want %q, each once, in order", got, allKeys)
	}
	uac.ExpectPass(t, 20*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// The callee sends early media (183 with SDP) and never answers; the
// caller presses 1 in its early media (RFC 4733 packets from SIPp's own
// capture of a key press) and then gives up with CANCEL. The key is
// reported from its first packets, before any answer: one caller-role
// DTMF_RECEIVED while the session is RINGING.
func TestCallerDigitsInEarlyMediaAreReportedBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_early_media_noanswer.xml")})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_early_dtmf_cancel.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	id := cc.firstSession(t, 5*time.Second)
	expectDTMFReceived(t, cc, id, "1", "sipp", "caller")
	for _, e := range cc.Seen {
		if e.Type == session.EventDTMFReceived && e.SessionID == id && e.State != session.Ringing {
			t.Errorf("the key was reported in state %s; want %s (before any answer)", e.State, session.Ringing)
		}
	}
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.Cancelled)
	cc.expectIdle(t)
}
