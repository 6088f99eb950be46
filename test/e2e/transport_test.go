package e2e

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// padSDP makes an SDP body about n bytes larger with attribute lines a
// peer ignores, so the whole message is over RFC 3261 18.1.1's 1,300 bytes.
func padSDP(n int) string {
	var b strings.Builder
	b.WriteString("a=sendrecv")
	for i := 0; b.Len() < n; i++ {
		b.WriteString("\n      a=x-pad:" + strings.Repeat("p", 60))
	}
	return b.String()
}

// A callee whose 200 OK is about 2 KB reaches a caller over UDP: callctl
// relays it as one large datagram (RFC 3261 18.2.2: a response goes back on
// the request's transport whatever its size) instead of dropping it, and the
// call is set up, carries audio and is torn down.
func TestLargeAnswerFromCalleeReachesUDPCaller(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uas_pcmu_rtp_send_bye.xml", "a=sendrecv", padSDP(2000)),
		Keys:     map[string]string{"duration": "2000"},
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
	if s := leg(t, cc.snapshot(t, id), "callee"); s.PacketsIn < 50 {
		t.Errorf("callctl relayed %d RTP packets from the callee; want ≥ 50", s.PacketsIn)
	}
	cc.expectIdle(t)
}

// A caller's INVITE of about 2 KB makes a B-leg INVITE over the UDP limit:
// callctl tries TCP toward the callee (RFC 3261 18.1.1), and as this callee
// listens on UDP only, sends it as one large UDP datagram. The call is set
// up and the large request is counted by how it went.
func TestLargeInviteReachesUDPOnlyCallee(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_pcmu_rtp_send_bye.xml"),
		Keys:     map[string]string{"duration": "2000"},
		Dir:      dir,
	})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   scenarioVariant(t, "uac_pcmu_rtp_wait_bye.xml", "a=sendrecv", padSDP(2000)),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeHungUp)
	if n := cc.metric(t, `callctl_sip_large_requests_total{transport="udp"}`); n == 0 {
		t.Errorf("callctl_sip_large_requests_total{transport=\"udp\"} = 0; want the B-leg INVITE counted as sent over UDP")
	}
	cc.expectIdle(t)
}

// trunk.large_over: udp is for a PBX that listens on UDP only, or whose
// TCP port is not its SIP service: a large B-leg INVITE goes straight as a
// large UDP datagram and callctl never opens a TCP connection. Here a TCP
// listener on the callee's port accepts and never answers; the call still
// works, over UDP, and the listener saw no connection.
func TestLargeOverUDPNeverTriesTCP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_pcmu_rtp_send_bye.xml"),
		Keys:     map[string]string{"duration": "2000"},
		Dir:      dir,
	})
	ln, err := net.Listen("tcp", uas.LocalAddr())
	if err != nil {
		t.Fatalf("listen on TCP %s: %v", uas.LocalAddr(), err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close() // held open, never answered, until the test ends
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })

	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Trunk.LargeOver = "udp"
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   scenarioVariant(t, "uac_pcmu_rtp_wait_bye.xml", "a=sendrecv", padSDP(2000)),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeHungUp)
	if n := accepted.Load(); n != 0 {
		t.Errorf("callctl opened %d TCP connections to the callee; want none with trunk.large_over: udp", n)
	}
	if n := cc.metric(t, `callctl_sip_large_requests_total{transport="udp"}`); n == 0 {
		t.Errorf("callctl_sip_large_requests_total{transport=\"udp\"} = 0; want the B-leg INVITE counted")
	}
	cc.expectIdle(t)
}
