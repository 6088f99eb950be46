package e2e

import (
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// A party callctl dials itself in a call gets SRTP by its own route, like
// the call's first callee: here number 4000's route says srtp: mandatory
// and leads to a baresip that speaks only RTP/SAVP (SDES keys). The caller
// and the first callee are plain-RTP SIPp parties. Before, such a party
// was always offered plain RTP, which an SRTP-only phone refuses.
func srtpTarget(t *testing.T) (*peers.Baresip, func(*config.Config)) {
	t.Helper()
	dir := t.TempDir()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "4000", MediaEnc: "srtp-mand", Dir: dir})
	return bob, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^4000$`, Target: "sip:{number}@" + bob.SIPAddr(), SRTP: "mandatory"}}
	}
}

// expectSRTPAudio waits until the SRTP party decrypted at least 50 of
// callctl's packets and callctl relayed at least 50 of its own to the
// other party.
func expectSRTPAudio(t *testing.T, cc *callctl, id string, bob *peers.Baresip, role string) {
	t.Helper()
	var rx uint64
	var in uint64
	callctltest.Eventually(10*time.Second, func() bool {
		a, err := bob.AudioStats()
		rx = a.RxPackets
		in = callctltest.LegStats(cc.snapshot(t, id), role).PacketsIn
		return err == nil && rx >= 50 && in >= 50
	})
	if rx < 50 || in < 50 {
		t.Errorf("the SRTP %s decrypted %d of callctl's packets and callctl took %d of its own; want ≥ 50 each", role, rx, in)
	}
}

// Forward while ringing to a number whose route is SRTP-only.
func TestForwardToAnSRTPRouteOffersSRTP(t *testing.T) {
	t.Parallel()
	bob, route := srtpTarget(t)
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	ringing := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_ring_noanswer.xml")})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = ringing.LocalAddr()
		route(cfg)
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Keys:       map[string]string{"duration": "4000"},
		Dir:        dir,
	})
	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.Ringing, 5*time.Second)
	if err := cc.app.Engine().Forward(opContext(t), id, "4000"); err != nil {
		t.Fatalf("Forward(4000): %v", err)
	}
	ringing.ExpectPass(t, 10*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	expectSRTPAudio(t, cc, id, bob, "callee")
	uac.ExpectPass(t, 20*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// A blind transfer whose transferee refuses REFER (405): the target callctl
// dials itself is on an SRTP-only route.
func TestFallbackTransferToAnSRTPRouteOffersSRTP(t *testing.T) {
	t.Parallel()
	bob, route := srtpTarget(t)
	callerDir, calleeDir := t.TempDir(), t.TempDir()
	peers.ToneFile(t, callerDir, 2, 440)
	peers.ToneFile(t, calleeDir, 2, 660)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_refuse_refer_405.xml"), Dir: calleeDir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Calls.TransferTimeout = 8 * time.Second
		route(cfg)
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp_wait_bye.xml"),
		RemoteAddr: cc.addr(),
		Service:    "1000",
		Dir:        callerDir,
	})
	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	if err := cc.app.Engine().BlindTransfer(opContext(t), id, "sipp", "4000"); err != nil {
		t.Fatalf("BlindTransfer(sipp → 4000): %v", err)
	}
	transferring := cc.waitState(t, id, session.Transferring, 5*time.Second)
	cc.waitStateAfter(t, id, session.InCall, transferring, 10*time.Second)
	uac.ExpectPass(t, 10*time.Second)
	expectSRTPAudio(t, cc, id, bob, "caller")
	if err := cc.app.Engine().Hangup(opContext(t), id); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}
