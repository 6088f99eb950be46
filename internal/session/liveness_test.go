package session

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
)

// endpointPair opens a relay endpoint and a socket that stands for its
// party, the endpoint pointed at the socket as the party's SDP would.
func endpointPair(t *testing.T) (*media.Endpoint, *net.UDPConn) {
	t.Helper()
	party, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { party.Close() })
	var ep *media.Endpoint
	for base := 40000 + int(time.Now().UnixNano()%2000)*2; ep == nil; base += 2 {
		pool, err := media.NewPortPool(base, base+1, 0)
		if err != nil {
			t.Fatal(err)
		}
		ep, _ = pool.Allocate(media.EndpointConfig{IP: netip.MustParseAddr("127.0.0.1")})
	}
	t.Cleanup(func() { ep.Close() })
	addr := party.LocalAddr().(*net.UDPAddr).AddrPort()
	ep.SetRemote(addr, addr)
	return ep, party
}

// sendRTCP sends the endpoint a receiver report from its party.
func sendRTCP(t *testing.T, ep *media.Endpoint, party *net.UDPConn) {
	t.Helper()
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 1} // RFC 3550 §6.4.2, no report blocks
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(ep.Port()+1))
	if _, err := party.WriteToUDPAddrPort(rr, to); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for ep.Stats().RTCPIn == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the endpoint never received the RTCP packet")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLivenessWatchesEachPartyAgainstWhatItShouldSend(t *testing.T) {
	cfg := &Config{MediaTimeout: 10 * time.Second, HoldTimeout: time.Minute}
	talking := media.MediaInfo{Direction: media.SendRecv}
	held := media.MediaInfo{Direction: media.RecvOnly}
	t0 := time.Now()

	t.Run("a talking party that sends nothing", func(t *testing.T) {
		ep, _ := endpointPair(t)
		var l liveness
		l.silence(ep, talking, false, t0, cfg) // starts the clock
		if _, _, dead := l.silence(ep, talking, false, t0.Add(9*time.Second), cfg); dead {
			t.Error("dead 9s after the answer; want alive until media.timeout (10s)")
		}
		what, limit, dead := l.silence(ep, talking, false, t0.Add(11*time.Second), cfg)
		if !dead || what != "RTP" || limit != cfg.MediaTimeout {
			t.Errorf("11s of silence: %q, %v, dead %v; want no RTP for media.timeout", what, limit, dead)
		}
	})
	t.Run("a held party that never sent RTCP", func(t *testing.T) {
		ep, _ := endpointPair(t)
		var l liveness
		l.silence(ep, held, true, t0, cfg)
		if _, _, dead := l.silence(ep, held, true, t0.Add(30*time.Second), cfg); dead {
			t.Error("a held party dead after 30s; want alive until media.hold_timeout (1m)")
		}
		if _, limit, dead := l.silence(ep, held, true, t0.Add(61*time.Second), cfg); !dead || limit != cfg.HoldTimeout {
			t.Errorf("61s on hold without a packet: limit %v, dead %v; want dead at media.hold_timeout", limit, dead)
		}
	})
	t.Run("a held party that sends RTCP", func(t *testing.T) {
		ep, party := endpointPair(t)
		var l liveness
		start := time.Now()
		l.silence(ep, held, true, start, cfg)
		sendRTCP(t, ep, party)
		// Its RTCP is its pulse: alive while it comes, and media.timeout,
		// not the longer hold timeout, once it stops.
		if _, _, dead := l.silence(ep, held, true, time.Now().Add(9*time.Second), cfg); dead {
			t.Error("dead 9s after its RTCP; want alive for media.timeout")
		}
		if _, limit, dead := l.silence(ep, held, true, time.Now().Add(11*time.Second), cfg); !dead || limit != cfg.MediaTimeout {
			t.Errorf("11s after its last RTCP: limit %v, dead %v; want dead at media.timeout", limit, dead)
		}
	})
	t.Run("a new endpoint or a new direction restarts the clock", func(t *testing.T) {
		ep, _ := endpointPair(t)
		other, _ := endpointPair(t)
		var l liveness
		l.silence(ep, talking, false, t0, cfg)
		if _, _, dead := l.silence(other, talking, false, t0.Add(11*time.Second), cfg); dead {
			t.Error("dead on the first look at a new endpoint (a transfer's); want the clock restarted")
		}
		if _, _, dead := l.silence(other, held, true, t0.Add(30*time.Second), cfg); dead {
			t.Error("dead on the first look after a hold; want the clock restarted")
		}
	})
	t.Run("timeouts off", func(t *testing.T) {
		ep, _ := endpointPair(t)
		var l liveness
		off := &Config{}
		l.silence(ep, talking, false, t0, off)
		if _, _, dead := l.silence(ep, talking, false, t0.Add(time.Hour), off); dead {
			t.Error("dead with media.timeout 0; want the timeout off")
		}
	})
}

func TestMediaCheckEvery(t *testing.T) {
	for _, tt := range []struct{ media, hold, want time.Duration }{
		{0, 0, 0},
		{60 * time.Second, 30 * time.Minute, time.Second},
		{time.Second, 0, 500 * time.Millisecond},
		{0, 1200 * time.Millisecond, 600 * time.Millisecond},
	} {
		if got := mediaCheckEvery(&Config{MediaTimeout: tt.media, HoldTimeout: tt.hold}); got != tt.want {
			t.Errorf("mediaCheckEvery(timeout %v, hold %v) = %v, want %v", tt.media, tt.hold, got, tt.want)
		}
	}
}

func TestQuotedTextCannotBreakOutOfTheReasonHeader(t *testing.T) {
	got := quotedText("no RTP from the caller a\"b\\c\r\nX-Evil: 1")
	if want := `no RTP from the caller a\"b\\cX-Evil: 1`; got != want {
		t.Errorf("quotedText = %q, want %q", got, want)
	}
}
