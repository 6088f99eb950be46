package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// Offer/answer beyond the INVITE with SDP (issue 11 points 2, 5 and 6).

// A caller's INVITE without SDP (delayed offer, RFC 3264 §4) reaches the
// callee without SDP; the callee's offer in its 200 reaches the caller in
// callctl's 200 (the caller's scenario checks an m= line), the caller's
// answer in its ACK reaches the callee in callctl's ACK (the callee's
// scenario checks it), and PCMU flows both ways through callctl's relay for
// the 3 s of the call (counted by a capture at each party's media port).
func TestDelayedOfferCarriesCalleeOfferIn200AndCallerAnswerInACK(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_delayed_offer.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uacMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", uacMedia, uas.MediaPort()))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_delayed_offer.xml"),
		RemoteAddr: cc.addr(),
		MediaPort:  uacMedia,
		Service:    "1000",
		Keys:       map[string]string{"duration": "3000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if !uacOK || !uasOK {
		t.FailNow()
	}
	if inv, ok := lastRequest(receivedRequests(uas), "INVITE"); !ok || strings.Contains(inv.Text, "m=audio") {
		t.Errorf("the callee's INVITE carried SDP (or none arrived); want a delayed offer:\n%s", inv.Text)
	}
	// 3 s of 20 ms packets is 150 each way.
	sentByCaller := peers.CountRTP(pkts, uint16(uacMedia), 0)
	sentByCallee := peers.CountRTP(pkts, uint16(uas.MediaPort()), 0)
	atCallee := peers.CountRTP(pkts, 0, uint16(uas.MediaPort()))
	atCaller := peers.CountRTP(pkts, 0, uint16(uacMedia))
	t.Logf("RTP caller→callee sent %d arrived %d; callee→caller sent %d arrived %d", sentByCaller, atCallee, sentByCallee, atCaller)
	if sentByCaller < 100 || sentByCallee < 100 {
		t.Fatalf("SIPp sent %d (caller) and %d (callee) RTP packets in 3 s; want ≥ 100 each (see %s)", sentByCaller, sentByCallee, capture.Path())
	}
	if !atLeast(uint64(atCallee), uint64(sentByCaller), 0.9) || !atLeast(uint64(atCaller), uint64(sentByCallee), 0.9) {
		t.Errorf("relayed caller→callee %d of %d and callee→caller %d of %d RTP packets; want ≥ 90%% each way",
			atCallee, sentByCaller, atCaller, sentByCallee)
	}
	cc.expectIdle(t)
}

// A delayed-offer caller whose ACK carries no answer: callctl ACKs the
// callee's 2xx (it must, RFC 3261 13.2.2.4), sends BYE with a Reason to both
// parties (each scenario passes only on a BYE) and the session ends ERROR
// with a reason naming the missing answer.
func TestDelayedOfferCallerACKWithoutAnswerEndsCallWithByeToBoth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uasScenario := scenarioVariant(t, "uas_delayed_offer.xml", `check_it="true" assign_to="answer_in_ack"`, `assign_to="answer_in_ack"`)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: uasScenario, Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_delayed_offer_no_answer.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	ended := cc.WaitEnded(t, id, 10*time.Second)
	uacOK := uac.ExpectPass(t, 15*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	if ended.State != session.Error || !strings.Contains(ended.Reason, "ACK") || !strings.Contains(ended.Reason, "answer") {
		t.Errorf("session ended %s (%q); want ERROR with a reason naming the ACK without an answer", ended.State, ended.Reason)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	expectByeWithReason(t, "caller", uac)
	expectByeWithReason(t, "callee", uas)
	if msgs := receivedRequests(uas); !slicesEqual(methods(msgs), []string{"INVITE", "ACK", "BYE"}) {
		t.Errorf("the callee received %v; want INVITE, ACK, BYE", methods(msgs))
	}
	cc.expectIdle(t)
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// receivedSDPResponses is the bodies of the 2xx SIPp received that carry
// SDP, in order.
func receivedSDPResponses(s *peers.SIPp) []string {
	var out []string
	for _, block := range strings.Split(s.Messages(), "-----------------------------------------------")[1:] {
		_, rest, _ := strings.Cut(block, "\n")
		what, text, _ := strings.Cut(rest, "\n")
		text = strings.TrimLeft(text, "\r\n")
		if strings.Contains(what, "received") && strings.HasPrefix(text, "SIP/2.0 200") && strings.Contains(text, "\no=") {
			_, body, _ := strings.Cut(text, "\r\n\r\n")
			out = append(out, body)
		}
	}
	return out
}

// sdpLine is the first line of body starting with prefix ("" if none).
func sdpLine(body, prefix string) string {
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimRight(l, "\r"); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// rtpPeer is a party's media on a port of the test's own: it answers every
// packet callctl sends it with a packet of payload 0x55 bytes, back to where
// callctl sent from (symmetric RTP).
type rtpPeer struct {
	conn     *net.UDPConn
	mu       sync.Mutex
	received int
	wg       sync.WaitGroup
}

func startRTPPeer(t *testing.T, port int) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPeer{conn: conn}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		out := make([]byte, 12+160)
		out[0], out[1] = 0x80, 0 // RTP v2, PCMU
		for i := 12; i < len(out); i++ {
			out[i] = 0x55
		}
		seq := uint16(1)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			p.mu.Lock()
			p.received++
			p.mu.Unlock()
			out[2], out[3] = byte(seq>>8), byte(seq)
			ts := uint32(seq) * 160
			out[4], out[5], out[6], out[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			out[8], out[9], out[10], out[11] = 0x12, 0x34, 0x56, 0x78
			seq++
			_, _ = conn.WriteToUDP(out, from)
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *rtpPeer) stop() {
	p.conn.Close()
	p.wg.Wait()
}

func (p *rtpPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received
}

// The caller re-INVITEs with its SDP unchanged but for a new o= version and
// a new RTP port: nothing the callee sees changes, so callctl answers alone
// (RFC 3264 §8) with the SDP it answered before, o= version included, the
// callee gets no re-INVITE (its scenario fails on one), and the relay
// follows the caller to the new port: the callee's audio is sent there and
// what the caller sends from there (payload 0x55) reaches the callee.
func TestReinviteMovingOnlyTheCallerPortIsAnsweredByCallctlAndMediaFollows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	newPort := peers.FreeUDPPort(t)
	moved := startRTPPeer(t, newPort)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and port %d", uas.MediaPort()))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_reinvite_moved_port.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"newport": fmt.Sprint(newPort), "duration": "2000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if got := methods(receivedRequests(uas)); !slicesEqual(got, []string{"INVITE", "ACK", "BYE"}) {
		t.Errorf("the callee received %v; want INVITE, ACK, BYE (no re-INVITE)", got)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	answers := receivedSDPResponses(uac)
	if len(answers) != 2 {
		t.Fatalf("the caller received %d 200s with SDP; want 2 (INVITE, re-INVITE)", len(answers))
	}
	if o1, o2 := sdpLine(answers[0], "o="), sdpLine(answers[1], "o="); o1 == "" || o1 != o2 {
		t.Errorf("callctl's answer to the re-INVITE has %q, its first answer %q; want the same o= line (nothing changed for the caller, RFC 3264 §8)", o2, o1)
	}
	if m1, m2 := sdpLine(answers[0], "m="), sdpLine(answers[1], "m="); m1 != m2 {
		t.Errorf("callctl's answer moved from %q to %q; want the same endpoint", m1, m2)
	}
	// 2 s at the new port: 100 packets of the callee's each way, less the
	// re-INVITE's round trip.
	fromNewPort := carrying(pkts, 0x55)
	t.Logf("at the new port: %d RTP packets from callctl; at the callee: %d from the new port", moved.count(), fromNewPort)
	if moved.count() < 50 {
		t.Errorf("callctl sent %d RTP packets to the caller's new port in 2 s; want ≥ 50 (the relay follows the re-INVITE's address)", moved.count())
	}
	if fromNewPort < 50 {
		t.Errorf("the callee received %d RTP packets sent from the caller's new port in 2 s; want ≥ 50 (the latch follows the new address)", fromNewPort)
	}
	cc.expectIdle(t)
}

// The callee sends an UPDATE without SDP (a session refresh): callctl
// answers it 200 itself and nothing reaches the caller. Then the callee
// holds the caller with an UPDATE (a=sendonly): the caller, whose INVITE had
// no Allow, gets it as a re-INVITE (its scenario checks a=sendonly and fails
// on any UPDATE), and its a=recvonly answer goes back to the callee in the
// 200 to the UPDATE (the callee's scenario checks it). The session goes
// CALLER_ON_HOLD.
func TestCalleeUpdateRefreshIsAnsweredLocallyAndUpdateHoldReachesCallerAsReinvite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_update_hold.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_sendonly.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "1000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerOnHold, session.CallerHungUp)
	if got := methods(receivedRequests(uac)); !slicesEqual(got, []string{"INVITE", "ACK"}) {
		t.Errorf("the caller received %v; want INVITE, ACK (the hold as re-INVITE, the refresh not at all)", got)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}

// The same hold by UPDATE reaches a caller whose INVITE said Allow: UPDATE
// as an UPDATE (RFC 3311), answered in its 200.
func TestCalleeUpdateHoldReachesCallerAsUpdateWhenItAllowsUpdate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_update_hold.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uac_expect_sendonly.xml",
			"Subject: uac_expect_sendonly", "Allow: INVITE, ACK, BYE, CANCEL, UPDATE\n      Subject: uac_expect_sendonly",
			`<recv request="INVITE">`, `<recv request="UPDATE">`,
			"<!-- The answer to the hold. -->\n  <send retrans=\"500\">", "<send>", // no ACK to an UPDATE's 200
			`<recv request="ACK"/>`, ``),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "1000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerOnHold, session.CallerHungUp)
	if got := methods(receivedRequests(uac)); !slicesEqual(got, []string{"UPDATE"}) {
		t.Errorf("the caller received %v; want one UPDATE", got)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}

// A MESSAGE inside the caller's dialog gets 405 Method Not Allowed with an
// Allow header (checked by the caller's scenario), and nothing reaches the
// callee.
func TestMessageInDialogGets405WithAllow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_message_expect_405.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if got := methods(receivedRequests(uas)); !slicesEqual(got, []string{"INVITE", "ACK", "BYE"}) {
		t.Errorf("the callee received %v; want INVITE, ACK, BYE", got)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}

// Before it answers, the callee (183 with SDP, an early dialog) holds the
// caller with an UPDATE (RFC 3311 §5.1): the caller, whose INVITE allows
// UPDATE, gets it in its early dialog before the 200 (its scenario checks
// a=sendonly), and its a=recvonly answer reaches the callee in the 200 to
// the UPDATE (checked by the callee's scenario); then the call is answered.
func TestCalleeUpdateInEarlyDialogReachesCallerBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_early_update.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_early_update.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if got := methods(receivedRequests(uac)); !slicesEqual(got, []string{"UPDATE"}) {
		t.Errorf("the caller received %v; want one UPDATE", got)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}

// The caller holds and resumes the callee by offerless re-INVITEs: callctl
// offers the SDP it last sent the caller in its 200 (the caller's scenario
// checks an m= line), and the caller's answers in its ACKs (a=sendonly, then
// a=sendrecv) change what the callee sees, so each reaches the callee as a
// re-INVITE (the callee's scenario checks the directions, in order) and the
// session goes CALLEE_ON_HOLD and back to IN_CALL.
func TestOfferlessReinviteAnswerInACKReachesTheOtherPartyWhenItChangesSomething(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_expect_hold.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_offerless_hold.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeOnHold, session.InCall, session.CallerHungUp)
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}

// The callee's UPDATE repeats its SDP with only the o= version bumped:
// nothing changes for the caller, so callctl answers it (200 with SDP, the
// callee's scenario checks a=sendrecv) and the caller gets no request at all.
func TestCalleeUpdateChangingNothingForTheCallerIsAnsweredByCallctl(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uas_update_hold.xml",
			"      a=sendonly\n", "      a=sendrecv\n",
			`regexp="a=recvonly"`, `regexp="a=sendrecv"`),
		Dir: dir,
	})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "2000"},
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if got := receivedRequests(uac); len(got) != 0 {
		t.Errorf("the caller received %v; want nothing (the UPDATE changed nothing for it)", methods(got))
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}

// Before the answer, the caller changes its media by UPDATE in the early
// dialog of the callee's 183 (RFC 3311 §5.1): the callee, whose 183 allows
// UPDATE, gets it as an UPDATE in its early dialog, sent to its 183's
// Contact (its scenario checks a=sendonly), and its a=recvonly answer
// reaches the caller in the 200 to the UPDATE (checked by the caller).
func TestCallerUpdateInEarlyDialogReachesCalleeBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_expect_early_update.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_send_early_update.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})

	id := cc.firstSession(t, 5*time.Second)
	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if got := methods(receivedRequests(uas)); !slicesEqual(got, []string{"INVITE", "UPDATE", "ACK", "BYE"}) {
		t.Errorf("the callee received %v; want INVITE, UPDATE, ACK, BYE", got)
	}
	if !uacOK || !uasOK {
		t.FailNow()
	}
	cc.expectIdle(t)
}
