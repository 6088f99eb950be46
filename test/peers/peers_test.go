package peers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A SIPp caller and callee talk PCMU to each other for two seconds with no
// callctl between them: the harness starts both, both pass, and the capture
// sees the RTP each one sent arrive at the other's media port.
func TestSIPpCallerReachesSIPpCalleeDirectly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)

	uas := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"),
		Dir:      dir,
	})
	uacMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d)", uas.MediaPort(), uacMedia))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: uas.LocalAddr(),
		MediaPort:  uacMedia,
		Service:    "1000",
		Keys:       map[string]string{"duration": "2000"},
		Dir:        dir,
	})

	uacOK := uac.ExpectPass(t, 15*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	pkts := capture.Stop(t)
	if !uacOK || !uasOK {
		return
	}
	// 2 s of 20 ms packets is 100 each way; allow for start and stop edges.
	toUAS := peers.CountRTP(pkts, uint16(uacMedia), uint16(uas.MediaPort()))
	toUAC := peers.CountRTP(pkts, uint16(uas.MediaPort()), uint16(uacMedia))
	t.Logf("RTP caller→callee %d, callee→caller %d", toUAS, toUAC)
	if toUAS < 90 || toUAC < 90 {
		t.Errorf("RTP caller→callee %d, callee→caller %d packets; want ≥ 90 each way for 2 s of 20 ms PCMU", toUAS, toUAC)
	}
}

// The SIPp verdict is the exit code: a caller expecting 404 from a callee
// that answers 486 fails.
func TestSIPpExitCodeReportsAFailedCall(t *testing.T) {
	t.Parallel()
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_busy.xml")})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_404.xml"),
		RemoteAddr: uas.LocalAddr(),
		Service:    "1000",
	})
	code, err := uac.Wait(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Errorf("caller expecting 404 but getting 486 exited %d; want 1 (a call failed)", code)
	}
	uas.Stop()
}

// Two baresip phones call each other with no callctl between them: both see
// the call established, audio flows both ways, and a hangup closes it on
// both sides.
func TestBaresipCallsBaresipDirectly(t *testing.T) {
	t.Parallel()
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "alice"})
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "bob"})

	if err := alice.Dial(bob.URI()); err != nil {
		t.Fatal(err)
	}
	in, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if in.Direction != "incoming" || out.Direction != "outgoing" {
		t.Errorf("directions: bob %q, alice %q; want incoming, outgoing", in.Direction, out.Direction)
	}
	if _, err := alice.WaitEvent(peers.EventCallRTPEstab, 5*time.Second); err != nil {
		t.Error(err)
	}
	if _, err := bob.WaitEvent(peers.EventCallRTPEstab, 5*time.Second); err != nil {
		t.Error(err)
	}

	time.Sleep(time.Second) // let a second of audio flow; the assertion is below
	a, err := alice.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.AudioStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alice %+v, bob %+v", a, b)
	if a.TxPackets < 40 || b.TxPackets < 40 || a.RxPackets < 40 || b.RxPackets < 40 {
		t.Errorf("after ≥1 s of call: alice sent %d received %d, bob sent %d received %d; want ≥ 40 each", a.TxPackets, a.RxPackets, b.TxPackets, b.RxPackets)
	}

	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	if e, err := alice.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	} else {
		t.Logf("alice closed: %s", e.Param)
	}
	if e, err := bob.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	} else {
		t.Logf("bob closed: %s", e.Param)
	}
	if calls, err := bob.ListCalls(); err != nil {
		t.Error(err)
	} else if want := "Active calls (0)"; !strings.Contains(calls, want) {
		t.Errorf("bob's calls after hangup: %q; want %q", calls, want)
	}
}

// Ports handed out are distinct, even where asked, and bindable.
func TestFreePortsAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 20 {
		lo, hi := peers.FreePortRange(t, 4)
		if lo%2 != 0 || hi != lo+3 {
			t.Fatalf("FreePortRange(4) = %d-%d; want an even start and 4 ports", lo, hi)
		}
		for p := lo; p <= hi; p++ {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
		p := peers.FreeUDPPort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
