package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// The operations of issue 3 (docs/design.md's operations table), each called on
// callctl's session engine while real peers hold the call, and checked on the
// wire: by the peers' scenarios and events, and by captures of the RTP.

// Each SIPp party in the media tests streams a flat payload of its own
// (peers.ConstantAudioFile), so a capture tells whose audio a packet carries.
const (
	callerPayload byte = 0x2a
	calleePayload byte = 0xa5
	targetPayload byte = 0x5c
)

// opTimeout bounds one operation call.
const opTimeout = 10 * time.Second

func opContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// A client holds the call: callctl re-INVITEs both parties with a=sendonly
// (each SIPp scenario checks the direction and answers a=recvonly), the
// session goes ON_HOLD, each party hears callctl's music on hold (PCMU from
// callctl's ports, sequence numbers and timestamps continuing the relayed
// stream) and nothing the other party sends (both keep streaming through the
// hold); unhold re-INVITEs both with a=sendrecv (checked again), the session
// is IN_CALL and each party hears the other once more.
func TestHoldReinvitesBothSendonlyPlaysMusicAndStopsRelayUntilUnhold(t *testing.T) {
	t.Parallel()
	callerDir, calleeDir := t.TempDir(), t.TempDir()
	peers.ConstantAudioFile(t, callerDir, 2, callerPayload)
	peers.ConstantAudioFile(t, calleeDir, 2, calleePayload)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_held_by_callctl.xml"), Dir: calleeDir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uacMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", uacMedia, uas.MediaPort()))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_held_by_callctl.xml"),
		RemoteAddr: cc.addr(),
		MediaPort:  uacMedia,
		Service:    "1000",
		Keys:       map[string]string{"duration": "2000"},
		Dir:        callerDir,
	})

	id := cc.firstSession(t, 5*time.Second)
	talking := cc.waitState(t, id, session.InCall, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)

	holdAt := time.Now()
	if err := cc.app.Engine().Hold(opContext(t), id); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	held := cc.waitState(t, id, session.OnHold, time.Second)
	time.Sleep(2500 * time.Millisecond)
	unholdAt := time.Now()
	if err := cc.app.Engine().Unhold(opContext(t), id); err != nil {
		t.Fatalf("Unhold: %v", err)
	}
	resumed := cc.waitStateAfter(t, id, session.InCall, held, time.Second)

	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	end := cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.OnHold, session.InCall, session.CallerHungUp)
	if !uacOK || !uasOK {
		t.FailNow()
	}

	lo, hi := cc.rtpPorts(t)
	const margin = 300 * time.Millisecond
	for _, p := range []struct {
		name        string
		port        int
		otherName   string
		otherSpeaks byte
	}{
		{"caller", uacMedia, "callee", calleePayload},
		{"callee", uas.MediaPort(), "caller", callerPayload},
	} {
		toParty := fromPortsTo(pkts, lo, hi, p.port)
		before := between(toParty, talking.Time.Add(margin), holdAt)
		during := between(toParty, held.Time.Add(margin), unholdAt)
		after := between(toParty, resumed.Time.Add(margin), end.Time.Add(-margin))
		t.Logf("RTP from callctl to the %s: %d before the hold (%d the %s's), %d during (%d the %s's), %d after (%d the %s's)",
			p.name, len(before), carrying(before, p.otherSpeaks), p.otherName,
			len(during), carrying(during, p.otherSpeaks), p.otherName,
			len(after), carrying(after, p.otherSpeaks), p.otherName)

		// 20 ms packets: a window of d holds d/20ms of them.
		if want := expectedPackets(talking.Time.Add(margin), holdAt, 0.7); carrying(before, p.otherSpeaks) < want {
			t.Errorf("before the hold the %s received %d RTP packets of the %s's audio; want ≥ %d", p.name, carrying(before, p.otherSpeaks), p.otherName, want)
		}
		if want := expectedPackets(held.Time.Add(margin), unholdAt, 0.7); len(during) < want {
			t.Errorf("during the hold the %s received %d RTP packets from callctl (music on hold); want ≥ %d", p.name, len(during), want)
		}
		if n := carrying(during, p.otherSpeaks); n > 0 {
			t.Errorf("during the hold %d RTP packets of the %s's audio reached the %s; want none (the relay must stop while held)", n, p.otherName, p.name)
		}
		if pts := payloadTypes(during); len(pts) != 1 || pts[0] != 0 {
			t.Errorf("music on hold to the %s had payload types %v; want only 0 (PCMU, the leg's codec)", p.name, pts)
		}
		if want := expectedPackets(resumed.Time.Add(margin), end.Time.Add(-margin), 0.7); carrying(after, p.otherSpeaks) < want {
			t.Errorf("after the unhold the %s received %d RTP packets of the %s's audio; want ≥ %d", p.name, carrying(after, p.otherSpeaks), p.otherName, want)
		}
		if bad := discontinuities(toParty); len(bad) > 0 {
			t.Errorf("the RTP stream from callctl to the %s jumps (relay → music → relay must keep one sequence and timestamp line): %s", p.name, strings.Join(bad, "; "))
		}
	}
	cc.expectIdle(t)
}

// The callee refuses the hold re-INVITE with 488: Hold fails with a
// peer-refused error naming the callee and the status, the caller (which
// accepted its hold) is resumed with a=sendrecv (its scenario requires that
// re-INVITE), the callee gets no second re-INVITE, and the session never
// leaves IN_CALL.
func TestHoldRefusedWith488ByCalleeResumesCallerAndStaysInCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_refuse_hold_488.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_held_by_callctl.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "1000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	time.Sleep(500 * time.Millisecond)

	err := cc.app.Engine().Hold(opContext(t), id)
	var opErr *session.OpError
	switch {
	case err == nil:
		t.Errorf("Hold succeeded though the callee answered 488; want a peer-refused error")
	case !errors.As(err, &opErr):
		t.Errorf("Hold: %v (%T); want a *session.OpError", err, err)
	default:
		t.Logf("Hold: %v", err)
		if opErr.Code != session.CodePeerRefused || !errors.Is(err, session.ErrPeerRefused) {
			t.Errorf("Hold error code %q; want %q", opErr.Code, session.CodePeerRefused)
		}
		if opErr.Status != 488 {
			t.Errorf("Hold error status %d; want 488", opErr.Status)
		}
		if !strings.Contains(opErr.Party+" "+opErr.Msg, "callee") || strings.Contains(opErr.Party, "caller") {
			t.Errorf("Hold error names party %q (%q); want the callee", opErr.Party, opErr.Msg)
		}
		if !strings.Contains(err.Error(), "488") {
			t.Errorf("Hold error %q does not say 488", err)
		}
	}
	if s := cc.snapshot(t, id); s.State != session.InCall {
		t.Errorf("after the refused hold the session is %s; want %s", s.State, session.InCall)
	}

	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	cc.expectIdle(t)
}

// With calls.hold_direction "inactive", the hold re-INVITE to each party
// offers a=inactive instead (both scenarios check it and answer a=inactive),
// and unhold a=sendrecv again.
func TestHoldWithInactiveDirectionConfiguredOffersInactive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	inactive := func(name string) string {
		return scenarioVariant(t, name, `regexp="a=sendonly"`, `regexp="a=inactive"`, "a=recvonly", "a=inactive")
	}
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: inactive("uas_held_by_callctl.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.HoldDirection = "inactive"
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   inactive("uac_held_by_callctl.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "500"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	if err := cc.app.Engine().Hold(opContext(t), id); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cc.app.Engine().Unhold(opContext(t), id); err != nil {
		t.Fatalf("Unhold: %v", err)
	}
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.OnHold, session.InCall, session.CallerHungUp)
	cc.expectIdle(t)
}

// scenarioVariant writes the named scenario with each old string replaced
// by the new one after it (pairs), and returns its path. Every old must be
// in the file.
func scenarioVariant(t *testing.T, name string, oldNew ...string) string {
	t.Helper()
	data, err := sipp.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(text, oldNew[i]) {
			t.Fatalf("%s has no %q to replace", name, oldNew[i])
		}
		text = strings.ReplaceAll(text, oldNew[i], oldNew[i+1])
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fromPortsTo is the RTP in pkts sent from a port in [lo, hi] (callctl's
// range) to port dst.
func fromPortsTo(pkts []peers.UDPPacket, lo, hi, dst int) []peers.UDPPacket {
	var out []peers.UDPPacket
	for _, p := range pkts {
		if p.IsRTP() && int(p.Dst.Port()) == dst && int(p.Src.Port()) >= lo && int(p.Src.Port()) <= hi {
			out = append(out, p)
		}
	}
	return out
}

// between is the packets captured in [from, to).
func between(pkts []peers.UDPPacket, from, to time.Time) []peers.UDPPacket {
	var out []peers.UDPPacket
	for _, p := range pkts {
		if !p.Time.Before(from) && p.Time.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// carrying counts the packets whose payload is all b.
func carrying(pkts []peers.UDPPacket, b byte) int {
	n := 0
	for _, p := range pkts {
		if p.Carries(b) {
			n++
		}
	}
	return n
}

// payloadTypes lists the RTP payload types in pkts, in order of appearance.
func payloadTypes(pkts []peers.UDPPacket) []uint8 {
	var out []uint8
	seen := map[uint8]bool{}
	for _, p := range pkts {
		if pt := p.RTPPayloadType(); !seen[pt] {
			seen[pt] = true
			out = append(out, pt)
		}
	}
	return out
}

// expectedPackets is frac of the 20 ms packets a stream sends in [from, to).
func expectedPackets(from, to time.Time, frac float64) int {
	return int(frac * float64(to.Sub(from)/(20*time.Millisecond)))
}

// discontinuities describes where one RTP stream (packets in capture order)
// breaks RFC 3550's continuity: a sequence number that does not advance by 1
// to 10 (a few losses allowed), or a timestamp that goes back or jumps more
// than 2 s of 8 kHz audio. At most five are described.
func discontinuities(pkts []peers.UDPPacket) []string {
	var bad []string
	for i := 1; i < len(pkts) && len(bad) < 5; i++ {
		a, b := pkts[i-1], pkts[i]
		dseq := b.RTPSeq() - a.RTPSeq()
		dts := int32(b.RTPTimestamp() - a.RTPTimestamp())
		if dseq < 1 || dseq > 10 || dts < 0 || dts > 16000 {
			bad = append(bad, fmt.Sprintf("packet %d at %s: seq %d → %d, timestamp %d → %d",
				i, b.Time.Format("15:04:05.000"), a.RTPSeq(), b.RTPSeq(), a.RTPTimestamp(), b.RTPTimestamp()))
		}
	}
	return bad
}

// sipMessage is one SIP message from a SIPp message trace (-trace_msg).
type sipMessage struct {
	Received bool
	Text     string
}

// Method is the request's method, or "" for a response.
func (m sipMessage) Method() string {
	first, _, _ := strings.Cut(m.Text, "\n")
	f := strings.Fields(first)
	if len(f) < 3 || strings.HasPrefix(f[0], "SIP/") {
		return ""
	}
	return f[0]
}

// Header returns the first value of header name ("" when absent).
func (m sipMessage) Header(name string) string {
	for _, line := range strings.Split(m.Text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// receivedRequests is every request SIPp received, from its message trace,
// in order.
func receivedRequests(s *peers.SIPp) []sipMessage {
	var out []sipMessage
	for _, block := range strings.Split(s.Messages(), "-----------------------------------------------")[1:] {
		_, rest, _ := strings.Cut(block, "\n") // the date
		what, text, _ := strings.Cut(rest, "\n")
		m := sipMessage{Received: strings.Contains(what, "received"), Text: strings.TrimLeft(text, "\r\n")}
		if m.Received && m.Method() != "" {
			out = append(out, m)
		}
	}
	return out
}

// methods lists the methods of msgs.
func methods(msgs []sipMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Method()
	}
	return out
}

// lastRequest is the last request of method in msgs (ok false if none).
func lastRequest(msgs []sipMessage, method string) (sipMessage, bool) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Method() == method {
			return msgs[i], true
		}
	}
	return sipMessage{}, false
}

// expectOpError checks err is an *session.OpError of code naming field.
func expectOpError(t *testing.T, what string, err error, code session.Code, field string) *session.OpError {
	t.Helper()
	var opErr *session.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("%s: %v (%T); want a *session.OpError with code %s", what, err, err, code)
		return nil
	}
	if opErr.Code != code {
		t.Errorf("%s: code %q (%v); want %q", what, opErr.Code, err, code)
	}
	if field != "" {
		if opErr.Field != field {
			t.Errorf("%s: field %q (%v); want %q", what, opErr.Field, err, field)
		}
		if !strings.Contains(err.Error(), field) {
			t.Errorf("%s: message %q does not name the field %q", what, err, field)
		}
	}
	return opErr
}

// A SIPp caller talks to baresip (3002) through callctl; a client transfers
// baresip to a SIPp target, the caller being the transferor. callctl sends
// REFER to baresip, baresip calls the target itself (straight, not through
// callctl) and reports 200 by NOTIFY; callctl then hangs up the caller (its
// scenario passes only on a BYE), the session ends TRANSFER_COMPLETED and
// the operation returns nil.
func TestBlindTransferByReferBaresipCallsTargetAndCallerGetsBye(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	target := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()}}
		cfg.Calls.TransferTimeout = 8 * time.Second
		cfg.Calls.TransferGrace = time.Second
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "3002",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	targetURI := "sip:4000@" + target.LocalAddr()
	if err := cc.app.Engine().BlindTransfer(opContext(t), id, "sipp", targetURI); err != nil {
		t.Errorf("BlindTransfer(sipp → %s): %v; want nil once the target answered", targetURI, err)
	}
	// baresip's second call, to the target, is established.
	if _, err := bob.WaitEventFunc(func(e peers.BaresipEvent) bool {
		return e.Type == peers.EventCallEstablished && strings.Contains(e.PeerURI, "4000@"+target.LocalAddr())
	}, "call to the target established", 10*time.Second); err != nil {
		t.Error(err)
	}
	uac.ExpectPass(t, 10*time.Second)
	end := cc.WaitEnded(t, id, 5*time.Second)
	if end.State != session.TransferCompleted {
		t.Errorf("session ended %s (%s); want %s", end.State, end.Reason, session.TransferCompleted)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.Transferring, session.TransferCompleted)
	if tr := cc.snapshot(t, id).Transfer; tr == nil || tr.Status != 200 || tr.Transferor != "sipp" || tr.Target != targetURI {
		t.Errorf("session transfer info %+v; want transferor sipp, target %s, status 200", tr, targetURI)
	}

	// baresip and the target talk on without callctl; baresip's hangup ends
	// that call, and the target's scenario passes on its BYE.
	if err := bob.Hangup(); err != nil {
		t.Error(err)
	}
	target.ExpectPass(t, 10*time.Second)
	cc.expectIdle(t)
}

// baresip (2001) calls baresip (3002) through callctl; a client transfers
// 3002 to a SIPp target that answers 486. baresip reports the failure by
// NOTIFY, the operation fails as refused by the target with 486, the session
// goes TRANSFER_FAILED and back to IN_CALL, and the original call still has
// audio both ways (callctl's counters and both phones' counters grow).
func TestBlindTransferToBusyTargetFailsAndCallKeepsAudioBothWays(t *testing.T) {
	t.Parallel()
	target := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_busy.xml")})
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()}}
		cfg.Calls.TransferTimeout = 8 * time.Second
	})
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})
	if err := alice.Dial("sip:3002@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)
	time.Sleep(500 * time.Millisecond)

	targetURI := "sip:4000@" + target.LocalAddr()
	err := cc.app.Engine().BlindTransfer(opContext(t), id, "2001", targetURI)
	t.Logf("BlindTransfer: %v", err)
	if opErr := expectOpError(t, "BlindTransfer to a busy target", err, session.CodePeerRefused, ""); opErr != nil {
		if opErr.Status != 486 {
			t.Errorf("BlindTransfer error status %d; want 486 (the target's answer, from the NOTIFY)", opErr.Status)
		}
	}
	target.ExpectPass(t, 10*time.Second)
	failed := cc.waitState(t, id, session.TransferFailed, 5*time.Second)
	restored := cc.waitStateAfter(t, id, session.InCall, failed, 5*time.Second)
	if s := cc.snapshot(t, id); s.State != session.InCall || s.Caller.Number != "2001" || s.Callee.Number != "3002" {
		t.Errorf("after the failed transfer the session is %s between %s and %s; want %s between 2001 and 3002",
			s.State, s.Caller.Number, s.Callee.Number, session.InCall)
	}

	// Audio both ways after the failure: 1.5 s is 75 packets each way.
	s0 := cc.snapshot(t, id)
	a0, errA := alice.AudioStats()
	b0, errB := bob.AudioStats()
	if errA != nil || errB != nil {
		t.Fatalf("audio_debug: %v, %v", errA, errB)
	}
	time.Sleep(1500 * time.Millisecond)
	s1 := cc.snapshot(t, id)
	a1, errA := alice.AudioStats()
	b1, errB := bob.AudioStats()
	if errA != nil || errB != nil {
		t.Fatalf("audio_debug: %v, %v", errA, errB)
	}
	grew := func(what string, before, after uint64) {
		t.Logf("%s: %d → %d", what, before, after)
		if after < before+40 {
			t.Errorf("%s grew by %d RTP packets in the 1.5 s after the failed transfer (since %s); want ≥ 40",
				what, after-before, restored.Time.Format("15:04:05.000"))
		}
	}
	grew("callctl relayed 2001→3002", callctltest.LegStats(s0, "callee").PacketsOut, callctltest.LegStats(s1, "callee").PacketsOut)
	grew("callctl relayed 3002→2001", callctltest.LegStats(s0, "caller").PacketsOut, callctltest.LegStats(s1, "caller").PacketsOut)
	grew("2001 received", a0.RxPackets, a1.RxPackets)
	grew("3002 received", b0.RxPackets, b1.RxPackets)

	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.TransferRequested, session.Transferring,
		session.TransferFailed, session.InCall, session.CallerHungUp)
	cc.expectIdle(t)
}

// A SIPp callee that refuses REFER with 405: callctl connects the target
// itself (a new leg, no re-INVITE to the callee: its scenario fails on any
// other request), hangs up the transferor (the caller's scenario passes only
// on a BYE), and the session goes TRANSFERRING straight to IN_CALL with the
// target as its caller (never through the ended TRANSFER_COMPLETED), with a
// transferCompleted OPERATION event. The callee's and the target's audio are relayed to
// each other (a capture finds each one's payload at the other's port) until
// a client hangs up, which both get as BYE.
func TestBlindTransferRefusedWith405FallsBackToCallctlConnectingTheTarget(t *testing.T) {
	t.Parallel()
	callerDir, calleeDir, targetDir := t.TempDir(), t.TempDir(), t.TempDir()
	peers.ConstantAudioFile(t, callerDir, 2, callerPayload)
	peers.ConstantAudioFile(t, calleeDir, 2, calleePayload)
	peers.ConstantAudioFile(t, targetDir, 2, targetPayload)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_refuse_refer_405.xml"), Dir: calleeDir})
	target := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: targetDir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.TransferTimeout = 8 * time.Second
	})
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", uas.MediaPort(), target.MediaPort()))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        callerDir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	time.Sleep(500 * time.Millisecond)

	targetURI := "sip:4000@" + target.LocalAddr()
	if err := cc.app.Engine().BlindTransfer(opContext(t), id, "sipp", targetURI); err != nil {
		t.Errorf("BlindTransfer(sipp → %s) with REFER refused: %v; want nil once callctl connected the target", targetURI, err)
	}
	transferring := cc.waitState(t, id, session.Transferring, 5*time.Second)
	connected := cc.waitStateAfter(t, id, session.InCall, transferring, 5*time.Second)
	// The session stayed live: its own OPERATION event says the transfer
	// completed (issue 11 point 10).
	cc.WaitEvent(t, 5*time.Second, "a transferCompleted operation event", func(e session.Event) bool {
		return e.Type == session.EventOperation && e.SessionID == id && e.Operation != nil &&
			e.Operation.Name == "transferCompleted" && e.Operation.Result == "ok"
	})
	uac.ExpectPass(t, 10*time.Second)
	if s := cc.snapshot(t, id); s.State != session.InCall || s.Caller.Number != "4000" || s.Callee.Number != "1000" {
		t.Errorf("after the fallback the session is %s between %q and %q; want %s between 4000 (the target, in the transferor's place) and 1000",
			s.State, s.Caller.Number, s.Callee.Number, session.InCall)
	}

	time.Sleep(2 * time.Second)
	hangupAt := time.Now()
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	uas.ExpectPass(t, 10*time.Second)
	target.ExpectPass(t, 10*time.Second)
	cc.waitStateAfter(t, id, session.HungUp, connected, 5*time.Second)
	pkts := capture.Stop(t)
	if walk := cc.Walk(id); !containsRun(walk, session.Transferring, session.InCall, session.HungUp) || slices.Contains(walk, session.TransferCompleted) {
		t.Errorf("session went %v; want it to pass %s → %s → %s, never the ended %s", walk, session.Transferring, session.InCall, session.HungUp, session.TransferCompleted)
	}

	lo, hi := cc.rtpPorts(t)
	window := func(port int) []peers.UDPPacket {
		return between(fromPortsTo(pkts, lo, hi, port), connected.Time.Add(300*time.Millisecond), hangupAt)
	}
	want := expectedPackets(connected.Time.Add(300*time.Millisecond), hangupAt, 0.7)
	toTarget, toCallee := window(target.MediaPort()), window(uas.MediaPort())
	t.Logf("after the fallback: %d RTP packets to the target (%d the callee's), %d to the callee (%d the target's, %d the old caller's); want ≥ %d",
		len(toTarget), carrying(toTarget, calleePayload), len(toCallee), carrying(toCallee, targetPayload), carrying(toCallee, callerPayload), want)
	if n := carrying(toTarget, calleePayload); n < want {
		t.Errorf("the target received %d RTP packets of the callee's audio after the fallback; want ≥ %d", n, want)
	}
	if n := carrying(toCallee, targetPayload); n < want {
		t.Errorf("the callee received %d RTP packets of the target's audio after the fallback; want ≥ %d", n, want)
	}
	if n := carrying(toCallee, callerPayload); n > 0 {
		t.Errorf("the callee received %d RTP packets of the old caller's audio after the fallback; want none", n)
	}
	if bad := discontinuities(fromPortsTo(pkts, lo, hi, uas.MediaPort())); len(bad) > 0 {
		t.Errorf("the RTP stream to the callee jumps at the re-bridge (it must continue without a re-INVITE): %s", strings.Join(bad, "; "))
	}
	cc.expectIdle(t)
}

// containsRun reports whether run appears in walk as consecutive states.
func containsRun(walk []session.State, run ...session.State) bool {
	for i := 0; i+len(run) <= len(walk); i++ {
		if slices.Equal(walk[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// Operations with bad arguments during a call: a transferor or DTMF party
// that is neither party, an empty or blank transfer target, a key that is not
// a DTMF key. Each fails with an invalid-argument error naming the field (and
// for a party, the two numbers allowed), the session stays IN_CALL, and
// nothing goes on the wire: both SIPp parties see only the call itself
// (their scenarios fail on any unexpected request, and their message traces
// hold no REFER, INFO or re-INVITE).
func TestOperationsWithBadArgumentsFailNamingTheFieldAndSendNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "2500"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	eng := cc.app.Engine()
	for _, tc := range []struct {
		what  string
		call  func(ctx context.Context) error
		field string
	}{
		{"BlindTransfer by 9999, who is neither party", func(ctx context.Context) error { return eng.BlindTransfer(ctx, id, "9999", "2000") }, "transferor"},
		{"BlindTransfer by an empty transferor", func(ctx context.Context) error { return eng.BlindTransfer(ctx, id, "", "2000") }, "transferor"},
		{"BlindTransfer to an empty target", func(ctx context.Context) error { return eng.BlindTransfer(ctx, id, "sipp", "") }, "target"},
		{"BlindTransfer to a blank target", func(ctx context.Context) error { return eng.BlindTransfer(ctx, id, "1000", "   ") }, "target"},
		{`SendDtmf of key "x"`, func(ctx context.Context) error { return eng.SendDtmf(ctx, id, "x", "sipp") }, "key"},
		{`SendDtmf of keys "12x"`, func(ctx context.Context) error { return eng.SendDtmf(ctx, id, "12x", "sipp") }, "key"},
		{"SendDtmf to 9999, who is neither party", func(ctx context.Context) error { return eng.SendDtmf(ctx, id, "1", "9999") }, "party"},
	} {
		err := tc.call(opContext(t))
		t.Logf("%s: %v", tc.what, err)
		if err == nil {
			t.Errorf("%s: no error; want an invalid-argument error naming %q", tc.what, tc.field)
			continue
		}
		opErr := expectOpError(t, tc.what, err, session.CodeInvalidArgument, tc.field)
		if !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("%s: errors.Is(err, ErrInvalidArgument) is false for %v", tc.what, err)
		}
		if opErr != nil && (tc.field == "transferor" || tc.field == "party") &&
			(!slices.Contains(opErr.Allowed, "sipp") || !slices.Contains(opErr.Allowed, "1000")) {
			t.Errorf("%s: allowed values %q; want the two parties, sipp and 1000", tc.what, opErr.Allowed)
		}
		if s := cc.snapshot(t, id); s.State != session.InCall {
			t.Errorf("after %s the session is %s; want %s", tc.what, s.State, session.InCall)
		}
	}

	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if got := methods(receivedRequests(uac)); len(got) != 0 {
		t.Errorf("the caller received requests %v; want none (it hangs up itself)", got)
	}
	if got := methods(receivedRequests(uas)); !slices.Equal(got, []string{"INVITE", "ACK", "BYE"}) {
		t.Errorf("the callee received requests %v; want only INVITE, ACK, BYE", got)
	}
	cc.expectIdle(t)
}

// A client forwards a call while the callee rings: callctl CANCELs the
// ringing leg (that callee's scenario passes only on a CANCEL), rings the
// new target with the caller's offer, the target answers, and the session
// walks RINGING → REDIRECTED → IN_CALL with the target as its callee. The
// caller hears the target: a capture finds the target's payload arriving at
// the caller from callctl.
func TestForwardWhileRingingCancelsCalleeAndConnectsTarget(t *testing.T) {
	t.Parallel()
	callerDir, targetDir := t.TempDir(), t.TempDir()
	peers.ConstantAudioFile(t, callerDir, 2, callerPayload)
	peers.ConstantAudioFile(t, targetDir, 2, targetPayload)
	ringing := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_ring_noanswer.xml")})
	target := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: targetDir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = ringing.LocalAddr() })
	uacMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and port %d", uacMedia))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		MediaPort:  uacMedia,
		Service:    "1000",
		Keys:       map[string]string{"duration": "2000"},
		Dir:        callerDir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.Ringing, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	targetURI := "sip:4000@" + target.LocalAddr()
	if err := cc.app.Engine().Forward(opContext(t), id, targetURI); err != nil {
		t.Errorf("Forward(%s) while ringing: %v", targetURI, err)
	}
	ringing.ExpectPass(t, 10*time.Second)
	talking := cc.waitState(t, id, session.InCall, 10*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	target.ExpectPass(t, 10*time.Second)
	end := cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)

	walk := cc.Walk(id)
	if !slices.Equal(walk, []session.State{session.Setup, session.Ringing, session.Redirected, session.InCall, session.CallerHungUp}) &&
		!slices.Equal(walk, []session.State{session.Setup, session.Ringing, session.Redirected, session.Ringing, session.InCall, session.CallerHungUp}) {
		t.Errorf("session went %v; want SETUP → RINGING → REDIRECTED → (RINGING →) IN_CALL → CALLER_HUNG_UP", walk)
	}
	if s := cc.snapshot(t, id); s.Callee.Number != "4000" || s.Caller.Number != "sipp" {
		t.Errorf("after the forward the session is between %q and %q; want sipp and 4000 (the target)", s.Caller.Number, s.Callee.Number)
	}
	lo, hi := cc.rtpPorts(t)
	heard := between(fromPortsTo(pkts, lo, hi, uacMedia), talking.Time.Add(300*time.Millisecond), end.Time.Add(-300*time.Millisecond))
	want := expectedPackets(talking.Time.Add(300*time.Millisecond), end.Time.Add(-300*time.Millisecond), 0.7)
	t.Logf("the caller received %d RTP packets from callctl while talking, %d of them the target's; want ≥ %d", len(heard), carrying(heard, targetPayload), want)
	if n := carrying(heard, targetPayload); n < want {
		t.Errorf("the caller received %d RTP packets of the target's audio; want ≥ %d", n, want)
	}
	cc.expectIdle(t)
}

// A client hangs up while the callee rings: the callee's leg is CANCELled
// (its scenario passes only on a CANCEL, which carries a Reason header), the
// caller's INVITE gets 487 (its scenario passes only on 487), the session
// ends HUNG_UP and stays readable; a second Hangup is a harmless nil.
func TestHangupWhileRingingCancelsCalleeAndAnswersCaller487(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_ring_noanswer.xml")})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_487.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.Ringing, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup while ringing: %v", err)
	}
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("second Hangup: %v; want nil (a no-op)", err)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.HungUp)
	if s := cc.snapshot(t, id); s.State != session.HungUp {
		t.Errorf("session is %s; want %s", s.State, session.HungUp)
	}
	if cancel, ok := lastRequest(receivedRequests(uas), "CANCEL"); !ok {
		t.Errorf("the callee received %v; want a CANCEL among them", methods(receivedRequests(uas)))
	} else if cancel.Header("Reason") == "" {
		t.Errorf("the callee's CANCEL has no Reason header saying callctl ended the call (RFC 3326):\n%s", cancel.Text)
	}
	cc.expectIdle(t)
}

// A client hangs up an answered call: both parties get a BYE with a Reason
// header (both scenarios pass only on a BYE), the session ends HUNG_UP and
// stays readable; a second Hangup is a harmless nil.
func TestHangupInCallByesBothParties(t *testing.T) {
	t.Parallel()
	uac, uas, cc, id := answeredCall(t)
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("second Hangup: %v; want nil (a no-op)", err)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.HungUp)
	if s := cc.snapshot(t, id); s.State != session.HungUp {
		t.Errorf("session is %s; want %s", s.State, session.HungUp)
	}
	expectByeWithReason(t, "caller", uac)
	expectByeWithReason(t, "callee", uas)
	cc.expectIdle(t)
}

// Close releases an answered call at once: both parties get a BYE, the
// session ends CLOSED and is gone from the registry; a second Close is a
// harmless nil.
func TestCloseInCallByesBothAndReleasesTheSession(t *testing.T) {
	t.Parallel()
	uac, uas, cc, id := answeredCall(t)
	if err := cc.app.Engine().Close(opContext(t), id); err != nil {
		t.Errorf("Close: %v", err)
	}
	expectReleased(t, cc, "Close", id)
	cc.waitState(t, id, session.Closed, 5*time.Second)
	if err := cc.app.Engine().Close(opContext(t), id); err != nil {
		t.Errorf("second Close: %v; want nil (a no-op)", err)
	}
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.Closed)
	cc.expectIdle(t)
}

// CloseWithHangup hangs up an answered call (both parties get a BYE), then
// releases it: HUNG_UP → CLOSED, gone from the registry; a second
// CloseWithHangup is a harmless nil.
func TestCloseWithHangupByesBothThenReleasesTheSession(t *testing.T) {
	t.Parallel()
	uac, uas, cc, id := answeredCall(t)
	if err := cc.app.Engine().CloseWithHangup(opContext(t), id); err != nil {
		t.Errorf("CloseWithHangup: %v", err)
	}
	expectReleased(t, cc, "CloseWithHangup", id)
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.waitState(t, id, session.Closed, 5*time.Second)
	if err := cc.app.Engine().CloseWithHangup(opContext(t), id); err != nil {
		t.Errorf("second CloseWithHangup: %v; want nil (a no-op)", err)
	}
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.HungUp, session.Closed)
	expectByeWithReason(t, "caller", uac)
	expectByeWithReason(t, "callee", uas)
	cc.expectIdle(t)
}

// expectReleased checks that, once op has returned, the registry no longer
// has session id: close releases it at once (docs/design.md).
func expectReleased(t *testing.T, cc *callctl, op, id string) {
	t.Helper()
	s, ok := cc.app.Sessions().Get(id)
	if !ok {
		return
	}
	later := "and still has it 2 s later"
	if callctltest.Eventually(2*time.Second, func() bool { _, ok := cc.app.Sessions().Get(id); return !ok }) {
		later = "though it is gone a moment later"
	}
	t.Errorf("when %s returned the registry still had session %s (%s), %s; want it released by the time %s returns",
		op, id, s.State, later, op)
}

// answeredCall is a SIPp caller and callee talking through callctl, both
// waiting for a BYE from it; it returns once the session is IN_CALL.
func answeredCall(t *testing.T) (uac, uas *peers.SIPp, cc *callctl, id string) {
	t.Helper()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas = peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc = startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac = peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id = cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	return uac, uas, cc, id
}

// expectByeWithReason checks the party's SIPp received a BYE carrying a
// Reason header (RFC 3326) that says who ended the call.
func expectByeWithReason(t *testing.T, party string, s *peers.SIPp) {
	t.Helper()
	bye, ok := lastRequest(receivedRequests(s), "BYE")
	if !ok {
		t.Errorf("the %s received no BYE", party)
		return
	}
	if bye.Header("Reason") == "" {
		t.Errorf("the %s's BYE has no Reason header saying callctl ended the call (RFC 3326):\n%s", party, bye.Text)
	}
}

// allKeys is every DTMF key a phone keypad has, in the order sent.
const allKeys = "1234567890*#"

// twoBaresipPhones is baresip 2001 calling baresip 3002 through callctl
// (3xxx routed to 3002); it returns once both phones and the session are in
// the call.
func twoBaresipPhones(t *testing.T) (alice, bob *peers.Baresip, cc *callctl, id string) {
	t.Helper()
	bob = peers.StartBaresip(t, peers.BaresipOptions{User: "3002"})
	cc = startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr()}}
	})
	alice = peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})
	if err := alice.Dial("sip:3002@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id = cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	return alice, bob, cc, id
}

// dtmfDigits collects the digits of baresip's CALL_DTMF_START events until
// want of them arrived or timeout passed, then for another quiet period, so
// that a duplicate shows.
func dtmfDigits(b *peers.Baresip, want int, timeout, quiet time.Duration) string {
	var got strings.Builder
	deadline := time.Now().Add(timeout)
	for n := 0; ; n++ {
		wait := time.Until(deadline)
		if n >= want {
			wait = quiet
		}
		e, err := b.WaitEvent("CALL_DTMF_START", wait)
		if err != nil {
			return got.String()
		}
		got.WriteString(e.Param)
	}
}

// sendDtmf of every key to the caller, a baresip phone that negotiated
// telephone-event: callctl sends RFC 4733 events in the RTP toward it, and
// baresip reports each key once, in order (CALL_DTMF_START). The callee
// hears none of them.
func TestSendDtmfToBaresipCallerArrivesAsRFC4733KeysInOrder(t *testing.T) {
	t.Parallel()
	alice, bob, cc, id := twoBaresipPhones(t)
	lo, hi := alice.RTPPorts()
	capture := peers.StartCapture(t, fmt.Sprintf("udp and dst portrange %d-%d", lo, hi))
	if err := cc.app.Engine().SendDtmf(opContext(t), id, allKeys, "2001"); err != nil {
		t.Errorf("SendDtmf(%s, caller 2001): %v", allKeys, err)
	}
	if got := dtmfDigits(alice, len(allKeys), 5*time.Second, 500*time.Millisecond); got != allKeys {
		t.Errorf("the caller (baresip) reported DTMF keys %q; want %q, each once, in order", got, allKeys)
	}
	pkts := capture.Stop(t)
	events := rfc4733Events(pkts)
	var keys strings.Builder
	for _, e := range events {
		keys.WriteByte("0123456789*#ABCD"[min(int(e.code), 15)])
		// RFC 4733 2.5: marker on the first packet of an event, the end
		// packet sent three times, the final duration the tone's length
		// (100 ms, 800 samples at 8 kHz).
		if !e.marker || e.ends != 3 || e.duration < 720 || e.duration > 880 || !e.growing {
			t.Errorf("RFC 4733 event %d (timestamp %d): marker on its first packet %v, end packets %d, final duration %d, durations growing %v; want true, 3, 800 (±10%%), true",
				e.code, e.timestamp, e.marker, e.ends, e.duration, e.growing)
		}
	}
	if keys.String() != allKeys {
		t.Errorf("RFC 4733 events toward the caller were for keys %q; want %q", keys.String(), allKeys)
	}
	if got := dtmfDigits(bob, 1, 0, 0); got != "" {
		t.Errorf("the callee reported DTMF keys %q; want none (the keys were for the caller)", got)
	}
	if s := cc.snapshot(t, id); s.State != session.InCall {
		t.Errorf("after SendDtmf the session is %s; want %s", s.State, session.InCall)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// sendDtmf of every key to a SIPp callee whose SDP has no telephone-event:
// callctl sends one SIP INFO application/dtmf-relay per key, in order, each
// with Signal and Duration=100 (the scenario checks every one, and fails on
// a missing, extra or reordered INFO).
func TestSendDtmfToCalleeWithoutTelephoneEventUsesSIPInfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_expect_dtmf_info.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "5000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	if err := cc.app.Engine().SendDtmf(opContext(t), id, allKeys, "1000"); err != nil {
		t.Errorf("SendDtmf(%s, callee 1000): %v", allKeys, err)
	}
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if got := methods(receivedRequests(uac)); len(got) != 0 {
		t.Errorf("the caller received requests %v; want none (the keys were for the callee)", got)
	}
	cc.expectIdle(t)
}

// The callee (baresip) presses every key (sndcode, RFC 4733): each becomes
// one DTMF_RECEIVED event naming the key and the callee, in order.
func TestDtmfFromBaresipBecomesDTMFReceivedEventsInOrder(t *testing.T) {
	t.Parallel()
	alice, bob, cc, id := twoBaresipPhones(t)
	for _, k := range allKeys {
		if _, err := bob.Command("sndcode", string(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	n := 0
	cc.WaitEvent(t, 5*time.Second, fmt.Sprintf("%d DTMF_RECEIVED events", len(allKeys)), func(e session.Event) bool {
		if e.Type == session.EventDTMFReceived && e.SessionID == id {
			n++
		}
		return n == len(allKeys)
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would have come by now
	cc.Drain()
	var digits strings.Builder
	for _, e := range cc.Seen {
		if e.Type != session.EventDTMFReceived || e.SessionID != id || e.DTMF == nil {
			continue
		}
		digits.WriteString(e.DTMF.Digit)
		if e.DTMF.Party != "3002" || e.DTMF.Role != "callee" {
			t.Errorf("DTMF_RECEIVED %+v; want party 3002, role callee", *e.DTMF)
		}
	}
	if digits.String() != allKeys {
		t.Errorf("DTMF_RECEIVED digits %q; want %q, each once, in order", digits.String(), allKeys)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// rfc4733Event is one telephone-event as it went on the wire: the packets
// sharing one RTP timestamp (RFC 4733 2.5.1).
type rfc4733Event struct {
	code      uint8
	timestamp uint32
	marker    bool   // the first packet had the RTP marker bit
	ends      int    // packets with the E bit
	duration  uint16 // the last packet's duration
	growing   bool   // durations never went down
}

// rfc4733Events finds the telephone-events among pkts: RTP packets whose
// payload is 4 octets (event, E/R/volume, duration) and whose payload type
// is dynamic (96-127), in order of their first packet.
func rfc4733Events(pkts []peers.UDPPacket) []rfc4733Event {
	var out []rfc4733Event
	index := map[uint32]int{}
	for _, p := range pkts {
		payload := p.RTPPayload()
		if pt := p.RTPPayloadType(); pt < 96 || pt > 127 || len(payload) != 4 {
			continue
		}
		ts := p.RTPTimestamp()
		dur := uint16(payload[2])<<8 | uint16(payload[3])
		i, seen := index[ts]
		if !seen {
			index[ts] = len(out)
			out = append(out, rfc4733Event{code: payload[0], timestamp: ts, marker: p.Payload[1]&0x80 != 0, growing: true})
			i = len(out) - 1
		}
		e := &out[i]
		if dur < e.duration {
			e.growing = false
		}
		e.duration = dur
		if payload[1]&0x80 != 0 {
			e.ends++
		}
	}
	return out
}
