package browser

import (
	"testing"
	"time"

	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// Listen-in on a call whose caller speaks SRTP (baresip, RTP/SAVP with SDES
// keys, RFC 4568) and whose callee plain RTP (SIPp): callctl decrypts the
// caller's leg before it forks, so the browser hears both parties, as on a
// plain call (issue 11 point 12: "listen-in keeps working"). Were the fork
// fed the caller's ciphertext, the caller's track would carry noise the
// browser's decoder cannot tell from audio: so the check is also on its
// size, 160 payload bytes per 20 ms PCMU packet; SRTP's ciphertext comes
// with a 10-byte authentication tag. The caller decrypting callctl's
// packets shows its leg really is SRTP.
func TestListenInHearsBothPartiesOfACallWithAnSRTPCaller(t *testing.T) {
	p := startChromium(t)
	uasDir := t.TempDir()
	pcmu.audio(t, uasDir, 660, false)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: pcmu.scenario(t, "uas_pcmu_rtp.xml"), Dir: uasDir, Timeout: 60 * time.Second})
	cc := startCallctlWith(t, uas.LocalAddr(), nil)
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", MediaEnc: "srtp-mand"})
	if err := alice.Dial("sip:1000@" + cc.cfg.SIP.Listen); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := openListenPage(t, p, cc, adminToken)
	took, stats := startListenIn(t, p, id, "srtp")
	if !stats.hearing() || took > 3*time.Second {
		t.Errorf("after %v getStats shows %+v (caller %+v, callee %+v); want two inbound audio tracks with packets and audio energy within 3 s",
			took, stats, stats.Caller, stats.Callee)
	}
	if c := stats.Caller; c == nil || c.PacketsReceived == 0 || c.BytesReceived != 160*c.PacketsReceived {
		t.Errorf("the caller's track in the browser: %+v; want 160 payload bytes per packet (plain PCMU, decrypted by callctl before the fork)", c)
	}
	var rx uint64
	callctltest.Eventually(5*time.Second, func() bool {
		a, err := alice.AudioStats()
		rx = a.RxPackets
		return err == nil && rx >= 50
	})
	if rx < 50 {
		t.Errorf("the SRTP caller decrypted %d packets from callctl; want ≥ 50 (its leg must really be SRTP)", rx)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	uas.ExpectPass(t, 15*time.Second)
}
