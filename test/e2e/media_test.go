package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// attackerPayload fills the attacker's RTP: neither party sends it.
const attackerPayload byte = 0x5a

// sprayRTP sends RTP carrying attackerPayload from 127.0.0.2 (another host,
// as far as callctl can tell) to every port of [lo, hi] every 10 ms until
// the returned stop is called, as an RTP-bleed attacker does: whichever
// relay port takes the first packet after an SDP would hand it the call.
// stop reports how many datagrams were sent.
func sprayRTP(t *testing.T, lo, hi int) (stop func() int) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatalf("attacker socket on 127.0.0.2: %v", err)
	}
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // RTP version 2, PCMU
	pkt[8], pkt[9], pkt[10], pkt[11] = 0xde, 0xad, 0xbe, 0xef
	for i := 12; i < len(pkt); i++ {
		pkt[i] = attackerPayload
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	sent := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			for port := lo; port <= hi; port++ {
				if _, err := conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))); err == nil {
					sent++
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			close(done)
			wg.Wait()
			_ = conn.Close()
		})
		return sent
	}
	t.Cleanup(func() { stop() })
	return stop
}

// metric reads one unlabelled counter from callctl's /metrics.
func (c *callctl) metric(t *testing.T, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.cfg.API.Listen+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.cfg.Admin.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("/metrics %s = %q: %v", name, v, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics (status %d) has no %s", resp.StatusCode, name)
	return 0
}

// An attacker on another host sprays callctl's whole RTP range through a
// live call and across a client's hold and unhold (each a new SDP from both
// parties, which used to reopen the latch). None of its audio reaches
// either party, callctl sends it nothing, the parties' own audio keeps
// flowing after the unhold, and the drops are counted.
func TestRTPFromAnotherHostCannotTakeOverALiveCall(t *testing.T) {
	t.Parallel()
	callerDir, calleeDir := t.TempDir(), t.TempDir()
	peers.ConstantAudioFile(t, callerDir, 2, callerPayload)
	peers.ConstantAudioFile(t, calleeDir, 2, calleePayload)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_held_by_callctl.xml"), Dir: calleeDir})
	cc := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = uas.LocalAddr() })
	uacMedia, _ := peers.FreePortRange(t, 4)
	capture := peers.StartCapture(t, fmt.Sprintf("udp and (port %d or port %d or host 127.0.0.2)", uacMedia, uas.MediaPort()))
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_held_by_callctl.xml"),
		RemoteAddr: cc.addr(),
		MediaPort:  uacMedia,
		Service:    "1000",
		Keys:       map[string]string{"duration": "2500"},
		Dir:        callerDir,
	})

	id := cc.firstSession(t, 5*time.Second)
	cc.waitState(t, id, session.InCall, 10*time.Second)
	lo, hi := cc.rtpPorts(t)
	stop := sprayRTP(t, lo, hi)
	time.Sleep(time.Second)
	if err := cc.app.Engine().Hold(opContext(t), id); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	held := cc.waitState(t, id, session.OnHold, 2*time.Second)
	time.Sleep(time.Second)
	if err := cc.app.Engine().Unhold(opContext(t), id); err != nil {
		t.Fatalf("Unhold: %v", err)
	}
	resumed := cc.waitStateAfter(t, id, session.InCall, held, 2*time.Second)
	time.Sleep(1500 * time.Millisecond)
	sprayed := stop()
	stopped := time.Now()

	uacOK := uac.ExpectPass(t, 20*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	pkts := capture.Stop(t)
	if !uacOK || !uasOK {
		t.FailNow()
	}
	foreign := cc.metric(t, "callctl_media_foreign_dropped_total")
	t.Logf("the attacker sent %d datagrams to %d-%d; callctl dropped %d as foreign", sprayed, lo, hi, foreign)

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
		if n := carrying(toParty, attackerPayload); n > 0 {
			t.Errorf("%d RTP packets of the attacker's audio reached the %s; want none", n, p.name)
		}
		after := between(toParty, resumed.Time.Add(300*time.Millisecond), stopped)
		if want := expectedPackets(resumed.Time.Add(300*time.Millisecond), stopped, 0.7); carrying(after, p.otherSpeaks) < want {
			t.Errorf("after the unhold, under attack, the %s received %d RTP packets of the %s's audio; want ≥ %d",
				p.name, carrying(after, p.otherSpeaks), p.otherName, want)
		}
	}
	toAttacker := 0
	for _, pkt := range pkts {
		if pkt.Dst.Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 2}) {
			toAttacker++
		}
	}
	if toAttacker > 0 {
		t.Errorf("callctl sent %d datagrams to the attacker; want none (it would hear the call)", toAttacker)
	}
	// The two live endpoints' four ports got about 4/64 of the spray.
	if want := uint64(sprayed) * 4 / uint64(hi-lo+1) / 2; foreign < want {
		t.Errorf("callctl_media_foreign_dropped_total = %d; want ≥ %d (half what reached the call's ports)", foreign, want)
	}
	cc.expectIdle(t)
}

// The caller's phone goes dead (it sends no RTP) while the callee talks on:
// the call ends after media.timeout with BYE to both, and the reason names
// the caller, not the callee. (It used to last for ever: the timeout fired
// only when both sides were silent.)
func TestSilentCallerEndsTheCallOnMediaTimeoutNamingTheCaller(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = uas.LocalAddr()
		cfg.Media.Timeout = 2 * time.Second
	})
	silent := scenarioVariant(t, "uac_pcmu_rtp_wait_bye.xml", `<exec rtp_stream="tone.raw,-1,0"/>`, `<log message="a dead phone: no RTP"/>`)
	uac := peers.StartSIPp(t, peers.SIPpOptions{Scenario: silent, RemoteAddr: cc.addr(), Service: "1000", Dir: dir})

	id := cc.firstSession(t, 5*time.Second)
	inCall := cc.waitState(t, id, session.InCall, 10*time.Second)
	end := cc.WaitEnded(t, id, 10*time.Second)
	uacOK := uac.ExpectPass(t, 10*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	if !uacOK || !uasOK {
		t.Errorf("both parties must get a BYE (SIPp passes only then): caller %v, callee %v", uacOK, uasOK)
	}
	if end.State != session.Error || !strings.Contains(end.Reason, "no RTP from the caller") || strings.Contains(end.Reason, "callee") {
		t.Errorf("the session ended %s (%q); want ERROR with a reason naming the silent caller only", end.State, end.Reason)
	}
	if took := end.Time.Sub(inCall.Time); took < 2*time.Second || took > 5*time.Second {
		t.Errorf("the call ended %v after the answer; want about media.timeout (2s)", took)
	}
	if s := cc.snapshot(t, id); leg(t, s, "callee").PacketsIn < 50 {
		t.Errorf("callctl received %d RTP packets from the callee; want its tone (≥ 50): the callee was talking", leg(t, s, "callee").PacketsIn)
	}
	cc.expectIdle(t)
}
