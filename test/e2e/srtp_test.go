package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// silence is the flat payload baresip's PCMU sends for a WAV of zero
// samples (µ-law of 0, ITU-T G.711): every octet 0xFF, so a capture tells
// plain audio (Carries) from SRTP, whose payload is ciphertext.
const silence = 0xff

// wireAudio is what a capture saw between a phone's RTP ports and callctl.
type wireAudio struct {
	rtp, flat int // RTP-shaped packets, and those carrying the flat payload
}

func audioAt(pkts []peers.UDPPacket, lo, hi int) (w wireAudio) {
	in := func(p uint16) bool { return int(p) >= lo && int(p) <= hi }
	for _, p := range pkts {
		if !p.IsRTP() || len(p.Payload) < 100 || !(in(p.Src.Port()) || in(p.Dst.Port())) {
			continue
		}
		w.rtp++
		if p.Carries(silence) {
			w.flat++
		}
	}
	return w
}

// One baresip speaks SDES-SRTP (RFC 4568, RTP/SAVP with a=crypto), the
// other plain RTP; callctl terminates SRTP on the secure leg and relays
// the audio both ways. Each phone must receive the other's audio (baresip
// counts only what it could decrypt), and the capture shows ciphertext on
// the SRTP leg and the plain payload on the other. On the old build an
// RTP/SAVP offer is refused with 488 (and the route has no srtp setting).
func TestSRTPBaresipTalksToPlainBaresipThroughCallctl(t *testing.T) {
	for _, tc := range []struct {
		name               string
		aliceEnc, bobEnc   string
		routeSRTP          string
		aliceSRTP, bobSRTP bool
	}{
		{name: "SRTP caller, plain callee", aliceEnc: "srtp-mand", routeSRTP: "off", aliceSRTP: true},
		{name: "plain caller, SRTP callee", bobEnc: "srtp-mand", routeSRTP: "mandatory", bobSRTP: true},
		{name: "both SRTP, own keys per leg", aliceEnc: "srtp-mand", bobEnc: "srtp-mand", routeSRTP: "mandatory", aliceSRTP: true, bobSRTP: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dirA, dirB := t.TempDir(), t.TempDir()
			bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", MediaEnc: tc.bobEnc, Dir: dirB,
				AudioWav: peers.SilentWavFile(t, dirB, 300)})
			cc := startCallctl(t, func(cfg *config.Config) {
				cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr(), SRTP: tc.routeSRTP}}
			})
			alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", MediaEnc: tc.aliceEnc, Dir: dirA,
				AudioWav: peers.SilentWavFile(t, dirA, 300)})
			aLo, aHi := alice.RTPPorts()
			bLo, bHi := bob.RTPPorts()
			capture := peers.StartCapture(t, fmt.Sprintf("udp and (portrange %d-%d or portrange %d-%d)", aLo, aHi, bLo, bHi))

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
			t.Logf("Alice sent %d received %d; Bob sent %d received %d", a.TxPackets, a.RxPackets, b.TxPackets, b.RxPackets)
			if b.RxPackets < 100 || !atLeast(b.RxPackets+5, a.TxPackets, 0.9) {
				t.Errorf("Bob received %d RTP packets of the %d Alice sent; want ≥ 100 and ≥ 90%%", b.RxPackets, a.TxPackets)
			}
			if a.RxPackets < 100 || !atLeast(a.RxPackets+5, b.TxPackets, 0.9) {
				t.Errorf("Alice received %d RTP packets of the %d Bob sent; want ≥ 100 and ≥ 90%%", a.RxPackets, b.TxPackets)
			}
			if err := alice.Hangup(); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
				t.Error(err)
			}
			cc.WaitEnded(t, id, 5*time.Second)
			pkts := capture.Stop(t)

			for _, leg := range []struct {
				who    string
				lo, hi int
				srtp   bool
			}{{"Alice", aLo, aHi, tc.aliceSRTP}, {"Bob", bLo, bHi, tc.bobSRTP}} {
				w := audioAt(pkts, leg.lo, leg.hi)
				t.Logf("%s's leg on the wire: %d RTP-shaped packets, %d with the plain payload", leg.who, w.rtp, w.flat)
				if w.rtp < 150 {
					t.Errorf("%s's leg: %d audio packets captured, want ≥ 150 (see %s)", leg.who, w.rtp, capture.Path())
				}
				if leg.srtp && w.flat != 0 {
					t.Errorf("%s's leg is SRTP but %d packets carried the audio in the clear", leg.who, w.flat)
				}
				if !leg.srtp && w.flat < w.rtp*9/10 {
					t.Errorf("%s's leg is plain RTP but only %d of %d packets carried the plain audio", leg.who, w.flat, w.rtp)
				}
			}
			cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
			for _, l := range cc.logs.All() {
				if line := l.Message + fmt.Sprint(l.Context); strings.Count(line, "inline:") != strings.Count(line, "inline:<redacted>") {
					t.Errorf("a log line shows an SRTP key: %s %v", l.Message, l.Context)
				}
			}
			cc.expectIdle(t)
		})
	}
}

// An SRTP caller (baresip, RTP/SAVP) reaches a plain-RTP SIPp callee: the
// callee's scenario checks the offer it gets is RTP/AVP without a=crypto,
// and the callee's PCMU stream must reach the caller encrypted with
// callctl's key (baresip counts only packets it could decrypt). On the old build the caller's offer is refused (488).
func TestSRTPCallerReachesPlainSIPpCalleeWithAudioRelayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uas_pcmu_rtp.xml",
			`<log message="INVITE offers PCMU: [$pcmu_offered]"/>`,
			`<log message="INVITE offers PCMU: [$pcmu_offered]"/>
      <ereg regexp="a=crypto" search_in="body" check_it_inverse="true" assign_to="crypto_offered"/>
      <log message="INVITE has no a=crypto: [$crypto_offered]"/>`),
		Dir: dir,
	})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", MediaEnc: "srtp-mand"})
	if err := alice.Dial("sip:1000@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	var s session.Snapshot
	flowing := callctltest.Eventually(10*time.Second, func() bool {
		s = cc.snapshot(t, id)
		caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
		return caller.PacketsIn >= 100 && callee.PacketsOut >= 100 && callee.PacketsIn >= 100 && caller.PacketsOut >= 100
	})
	caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
	if !flowing {
		t.Errorf("callctl relayed caller→callee %d→%d and back %d→%d; want ≥ 100 each", caller.PacketsIn, callee.PacketsOut, callee.PacketsIn, caller.PacketsOut)
	}
	a, err := alice.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	if a.RxPackets < 100 {
		t.Errorf("the SRTP caller decrypted %d echoed packets, want ≥ 100", a.RxPackets)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	uas.ExpectPass(t, 15*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// media.srtp_inbound decides whether plain-RTP callers are taken: with
// require a SIPp caller offering RTP/AVP gets 488 (scenario uac_bad_sdp
// expects exactly that) and no B leg is dialled; with refuse an SRTP
// caller's RTP/SAVP offer gets 488. On the old build the plain caller is
// connected (the setting does not exist).
func TestSRTPInboundPolicyRefusesPlainOrSRTPCallers(t *testing.T) {
	t.Parallel()
	t.Run("require refuses a plain caller", func(t *testing.T) {
		t.Parallel()
		uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml")})
		cc := startCallctl(t, func(cfg *config.Config) {
			cfg.Trunk.Address = uas.LocalAddr()
			cfg.Media.SRTPInbound = "require"
		})
		uac := peers.StartSIPp(t, peers.SIPpOptions{
			Scenario: scenarioVariant(t, "uac_bad_sdp.xml",
				"o=broken", "o=- 1 1 IN IP4 [media_ip]",
				"m=audio notaport RTP/AVP 0", "m=audio [media_port] RTP/AVP 0"),
			RemoteAddr: cc.addr(),
			Service:    "1000",
		})
		uac.ExpectPass(t, 15*time.Second)
		cc.expectLog(t, "why the call was refused", func(line string) bool {
			return strings.Contains(line, "srtp_inbound is require")
		})
		if got := receivedRequests(uas); len(got) != 0 {
			t.Errorf("the callee got %v; want no B leg", methods(got))
		}
		cc.expectIdle(t)
	})
	t.Run("refuse refuses an SRTP caller", func(t *testing.T) {
		t.Parallel()
		cc := startCallctl(t, func(cfg *config.Config) { cfg.Media.SRTPInbound = "refuse" })
		uac := peers.StartSIPp(t, peers.SIPpOptions{
			Scenario: scenarioVariant(t, "uac_bad_sdp.xml",
				"o=broken", "o=- 1 1 IN IP4 [media_ip]",
				"m=audio notaport RTP/AVP 0", "m=audio [media_port] RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
			RemoteAddr: cc.addr(),
			Service:    "1000",
		})
		uac.ExpectPass(t, 15*time.Second)
		cc.expectLog(t, "why the call was refused", func(line string) bool {
			return strings.Contains(line, "srtp_inbound is refuse")
		})
		cc.expectIdle(t)
	})
}

// DTMF works through SRTP legs both ways: the SRTP callee's RFC 4733 keys
// (baresip sndcode), decrypted by callctl, become DTMF_RECEIVED events and
// reach the SRTP caller, and keys callctl sends to the caller (sendDtmf)
// are encrypted into its stream, which baresip decrypts and reports. On the
// old build no call is set up (RTP/SAVP is refused with 488).
func TestDtmfCrossesSRTPLegsBothWays(t *testing.T) {
	t.Parallel()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", MediaEnc: "srtp-mand"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr(), SRTP: "mandatory"}}
	})
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", MediaEnc: "srtp-mand"})
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
	time.Sleep(300 * time.Millisecond)

	const keys = "147#"
	for _, k := range keys {
		if _, err := bob.Command("sndcode", string(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	n := 0
	cc.WaitEvent(t, 5*time.Second, fmt.Sprintf("%d DTMF_RECEIVED events", len(keys)), func(e session.Event) bool {
		if e.Type == session.EventDTMFReceived && e.SessionID == id && e.DTMF != nil && e.DTMF.Role == "callee" {
			n++
		}
		return n == len(keys)
	})
	if got := dtmfDigits(alice, len(keys), 5*time.Second, 300*time.Millisecond); got != keys {
		t.Errorf("the SRTP caller reported the callee's keys as %q; want %q", got, keys)
	}
	if err := cc.app.Engine().SendDtmf(opContext(t), id, "259", "2001"); err != nil {
		t.Fatalf("SendDtmf to the SRTP caller: %v", err)
	}
	if got := dtmfDigits(alice, 3, 5*time.Second, 300*time.Millisecond); got != "259" {
		t.Errorf("the SRTP caller reported callctl's keys as %q; want 259", got)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// hold and unhold on SRTP legs: callctl's re-INVITEs carry its same key
// (RFC 4568 §7.1.4 allows keeping it), both baresips accept them, music on
// hold reaches each party encrypted (baresip keeps decrypting packets while
// held), and after unhold the parties hear each other again.
func TestHoldAndUnholdOnSRTPLegsKeepAudioDecryptable(t *testing.T) {
	t.Parallel()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", MediaEnc: "srtp-mand"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr(), SRTP: "mandatory"}}
	})
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", MediaEnc: "srtp-mand"})
	if err := alice.Dial("sip:3002@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id := cc.firstSession(t, time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)
	if err := cc.app.Engine().Hold(opContext(t), id); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	cc.waitState(t, id, session.OnHold, 5*time.Second)
	a0, _ := alice.AudioStats()
	b0, _ := bob.AudioStats()
	time.Sleep(time.Second)
	a1, _ := alice.AudioStats()
	b1, _ := bob.AudioStats()
	if a1.RxPackets < a0.RxPackets+25 || b1.RxPackets < b0.RxPackets+25 {
		t.Errorf("in 1 s on hold Alice decrypted %d and Bob %d packets of music; want ≥ 25 each",
			a1.RxPackets-a0.RxPackets, b1.RxPackets-b0.RxPackets)
	}
	hold := cc.waitState(t, id, session.OnHold, time.Second)
	if err := cc.app.Engine().Unhold(opContext(t), id); err != nil {
		t.Fatalf("Unhold: %v", err)
	}
	cc.waitStateAfter(t, id, session.InCall, hold, 5*time.Second)
	s0 := cc.snapshot(t, id)
	time.Sleep(time.Second)
	s1 := cc.snapshot(t, id)
	caller0, caller1 := callctltest.LegStats(s0, "caller"), callctltest.LegStats(s1, "caller")
	callee0, callee1 := callctltest.LegStats(s0, "callee"), callctltest.LegStats(s1, "callee")
	if caller1.PacketsIn-caller0.PacketsIn < 25 || callee1.PacketsOut-callee0.PacketsOut < 25 ||
		callee1.PacketsIn-callee0.PacketsIn < 25 || caller1.PacketsOut-caller0.PacketsOut < 25 {
		t.Errorf("in 1 s after unhold callctl relayed caller→callee %d→%d and back %d→%d; want ≥ 25 each",
			caller1.PacketsIn-caller0.PacketsIn, callee1.PacketsOut-callee0.PacketsOut,
			callee1.PacketsIn-callee0.PacketsIn, caller1.PacketsOut-caller0.PacketsOut)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.expectIdle(t)
}

// With srtp: mandatory a callee that answers plain RTP (SIPp's built-in
// UAS: RTP/AVP, no a=crypto) to callctl's RTP/SAVP offer gets BYE, and the
// caller 502: callctl never falls back to plain RTP when SRTP is required.
// On the old build the route's srtp setting does not exist and the call
// is connected.
func TestMandatorySRTPCalleeAnsweringPlainIsHungUpAndCallerGets502(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: "uas"})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Trunk.SRTP = "mandatory"
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   scenarioVariant(t, "uac_expect_503.xml", `<recv response="503"/>`, `<recv response="502"/>`),
		RemoteAddr: cc.addr(),
		Service:    "1000",
	})
	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 15*time.Second)
	uas.ExpectPass(t, 15*time.Second) // the built-in UAS passes only if a BYE ended its call
	cc.WaitEnded(t, id, 5*time.Second)
	if s := cc.snapshot(t, id); s.State != session.Error || !strings.Contains(s.EndReason, "a=crypto") {
		t.Errorf("session ended %s (%q); want %s naming the missing a=crypto", s.State, s.EndReason, session.Error)
	}
	cc.expectIdle(t)
}
