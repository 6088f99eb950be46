package listen

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// checkStream fails unless pkts are one continuous RTP stream of PCMU audio
// from the tagged phone: consecutive sequence numbers, timestamps never
// going back, 160-byte payloads counting up from first (no telephone-event
// or comfort noise among them).
func checkStream(t *testing.T, stream string, pkts []*rtp.Packet, tag byte, first int) {
	t.Helper()
	for i, p := range pkts {
		if p.PayloadType != 0 || len(p.Payload) != 160 || p.Payload[0] != tag {
			t.Fatalf("%s packet %d: PT %d, %d-byte payload %x...; want PCMU audio from phone %c",
				stream, i, p.PayloadType, len(p.Payload), p.Payload[:min(4, len(p.Payload))], tag)
		}
		if n := int(p.Payload[2])<<8 | int(p.Payload[3]); n != first+i {
			t.Fatalf("%s packet %d carries the phone's packet %d, want %d", stream, i, n, first+i)
		}
		if i == 0 {
			continue
		}
		prev := pkts[i-1]
		if p.SSRC != prev.SSRC || p.SequenceNumber != prev.SequenceNumber+1 || int32(p.Timestamp-prev.Timestamp) < 160 {
			t.Fatalf("%s packet %d: SSRC %#x seq %d ts %d after SSRC %#x seq %d ts %d; want the same SSRC, seq+1, ts+160 or more",
				stream, i, p.SSRC, p.SequenceNumber, p.Timestamp, prev.SSRC, prev.SequenceNumber, prev.Timestamp)
		}
	}
}

func TestListenerHearsBothPartiesAsOneContinuousStreamEach(t *testing.T) {
	m, endings := newManager(t, Config{})
	c := newCall(t)
	b := newBrowser(t, browserOptions{})
	id := listen(t, m, b, "s1", c)
	if n := m.Count("s1"); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}

	c.phoneA.audio(10)
	c.phoneB.audio(10)
	c.phoneA.dtmf() // must not reach the listener, nor leave a gap
	c.phoneA.audio(5)
	// A new source on both sides (re-INVITE, transfer, music on hold):
	// the listener's streams go on.
	c.phoneA.newSource()
	c.phoneB.newSource()
	time.Sleep(100 * time.Millisecond)
	c.phoneA.audio(10)
	c.phoneB.audio(10)

	caller := b.waitFor("caller", 25)
	callee := b.waitFor("callee", 20)
	checkStream(t, "caller", caller, 'A', 0)
	checkStream(t, "callee", callee, 'B', 0)
	if !caller[15].Marker {
		t.Error("caller packet 15, the first of the new source, has no marker bit")
	}
	// 100 ms of silence between the sources is in the timestamps.
	if d := callee[10].Timestamp - callee[9].Timestamp; d < 800 {
		t.Errorf("callee timestamps advance %d across a 100 ms pause, want at least 800", d)
	}
	// The relay went on as before.
	if st := c.eb.Stats(); st.PacketsOut < 25 {
		t.Errorf("callee endpoint sent %d packets, want the caller's 25 and events", st.PacketsOut)
	}

	if err := m.Stop(id); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	expectEnded(t, endings, ended{id, "s1", "supervisor", ReasonStopped}, time.Second)
	if n := m.Count("s1"); n != 0 {
		t.Errorf("Count = %d after Stop, want 0", n)
	}
	if c.ea.Forks() != 0 || c.eb.Forks() != 0 {
		t.Errorf("forks left on the endpoints after Stop: %d, %d", c.ea.Forks(), c.eb.Forks())
	}
	if err := m.Stop(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Stop: err = %v, want ErrNotFound", err)
	}
	// The browser learns it too (DTLS close_notify).
	eventually(t, "the browser's PeerConnection closes", func() bool {
		return b.pc.ConnectionState() == webrtc.PeerConnectionStateClosed
	})
}

func TestEndingTheCallEndsItsListeners(t *testing.T) {
	m, endings := newManager(t, Config{})
	c := newCall(t)
	other := newCall(t)
	b1, b2, b3 := newBrowser(t, browserOptions{}), newBrowser(t, browserOptions{}), newBrowser(t, browserOptions{})
	id1 := listen(t, m, b1, "s1", c)
	id2 := listen(t, m, b2, "s1", c)
	id3 := listen(t, m, b3, "s2", other)
	if n := m.Count("s1"); n != 2 {
		t.Errorf("Count(s1) = %d, want 2", n)
	}
	c.phoneA.audio(5)
	b1.waitFor("caller", 5)
	b2.waitFor("caller", 5)
	if c.ea.Forks() != 2 {
		t.Errorf("caller endpoint has %d forks for two listeners, want 2", c.ea.Forks())
	}

	m.StopSession("s1")
	got := map[string]string{}
	for range 2 {
		select {
		case e := <-endings:
			got[e.id] = e.reason
		case <-time.After(time.Second):
			t.Fatal("OnEnded not called for both listeners")
		}
	}
	if got[id1] != ReasonCallEnded || got[id2] != ReasonCallEnded {
		t.Errorf("ended %v, want %s and %s with %q", got, id1, id2, ReasonCallEnded)
	}
	if m.Count("s1") != 0 || m.Count("s2") != 1 {
		t.Errorf("Count(s1), Count(s2) = %d, %d; want 0, 1", m.Count("s1"), m.Count("s2"))
	}
	if c.ea.Forks() != 0 {
		t.Errorf("%d forks left on the caller endpoint", c.ea.Forks())
	}
	other.phoneB.audio(3)
	b3.waitFor("callee", 3)

	// Closing the manager ends the rest.
	m.Close()
	expectEnded(t, endings, ended{id3, "s2", "supervisor", ReasonShutdown}, time.Second)
	if _, _, err := m.Start(context.Background(), "s2", "x", newBrowser(t, browserOptions{}).offer(), pcmu(other.ea), pcmu(other.eb)); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: err = %v, want ErrClosed", err)
	}
}

func TestBrowserClosingItsPeerConnectionEndsTheListener(t *testing.T) {
	m, endings := newManager(t, Config{})
	c := newCall(t)
	b := newBrowser(t, browserOptions{})
	id := listen(t, m, b, "s1", c)
	if err := b.pc.Close(); err != nil {
		t.Fatal(err)
	}
	expectEnded(t, endings, ended{id, "s1", "supervisor", ReasonPeerClosed}, 5*time.Second)
	if m.Count("s1") != 0 || c.ea.Forks() != 0 {
		t.Errorf("Count = %d, forks = %d after the browser left; want 0, 0", m.Count("s1"), c.ea.Forks())
	}
}

// A browser tab that vanishes (crash, network gone) says nothing: ICE times
// out and the listener ends.
func TestBrowserVanishingEndsTheListenerAfterTheICETimeout(t *testing.T) {
	m, endings := newManager(t, Config{ICETimeout: time.Second})
	c := newCall(t)
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, browserOptions{conn: conn})
	id := listen(t, m, b, "s1", c)
	start := time.Now()
	_ = conn.Close() // no close_notify, no more answers to ICE checks
	expectEnded(t, endings, ended{id, "s1", "supervisor", ReasonICEFailed}, 5*time.Second)
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("listener ended %v after the browser vanished, sooner than the ICE timeout allows", d)
	}
	if m.Count("s1") != 0 {
		t.Errorf("Count = %d, want 0", m.Count("s1"))
	}
}

func TestListenerThatNeverConnectsEnds(t *testing.T) {
	m, endings := newManager(t, Config{ConnectTimeout: 300 * time.Millisecond})
	c := newCall(t)
	b := newBrowser(t, browserOptions{})
	id, _, err := m.Start(context.Background(), "s1", "supervisor", b.offer(), pcmu(c.ea), pcmu(c.eb))
	if err != nil {
		t.Fatal(err)
	}
	// The browser never applies the answer.
	expectEnded(t, endings, ended{id, "s1", "supervisor", ReasonNotConnected}, 3*time.Second)
	if m.Count("s1") != 0 {
		t.Errorf("Count = %d, want 0", m.Count("s1"))
	}
}

func TestStartRefusesWhatItCannotServe(t *testing.T) {
	m, _ := newManager(t, Config{})
	c := newCall(t)
	pcma := []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8}}
	closed := newCall(t)
	_ = closed.eb.Close()
	tests := []struct {
		name           string
		offer          func() string
		caller, callee Track
		want           error
		msg            string
	}{
		{name: "offer not SDP", offer: func() string { return "hello" }, caller: pcmu(c.ea), callee: pcmu(c.eb),
			want: ErrInvalidArgument, msg: "not valid SDP"},
		{name: "one audio section", offer: func() string { return newBrowser(t, browserOptions{audio: 1}).offer() },
			caller: pcmu(c.ea), callee: pcmu(c.eb), want: ErrInvalidArgument, msg: "want 2"},
		{name: "codec the browser lacks", offer: func() string { return newBrowser(t, browserOptions{codecs: pcma}).offer() },
			caller: pcmu(c.ea), callee: pcmu(c.eb), want: ErrInvalidArgument, msg: "lacks PCMU"},
		{name: "codec a browser cannot play", offer: func() string { return newBrowser(t, browserOptions{}).offer() },
			caller: Track{Endpoint: c.ea, Codec: "G729", PayloadType: 18, TelephoneEvent: -1}, callee: pcmu(c.eb),
			want: ErrInvalidArgument, msg: "PCMU, PCMA, G722, opus"},
		{name: "no endpoint", offer: func() string { return newBrowser(t, browserOptions{}).offer() },
			caller: pcmu(c.ea), callee: Track{Codec: "PCMU"}, want: ErrInvalidArgument, msg: "callee track has no endpoint"},
		{name: "telephone-event as the audio", offer: func() string { return newBrowser(t, browserOptions{}).offer() },
			caller: Track{Endpoint: c.ea, Codec: "PCMU", PayloadType: 101, TelephoneEvent: 101}, callee: pcmu(c.eb),
			want: ErrInvalidArgument, msg: "payload type 101"},
		{name: "call already ended", offer: func() string { return newBrowser(t, browserOptions{}).offer() },
			caller: pcmu(closed.ea), callee: pcmu(closed.eb), want: ErrCallEnded, msg: "callee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, answer, err := m.Start(context.Background(), "s1", "supervisor", tt.offer(), tt.caller, tt.callee)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Start: err = %v, want %v saying %q", err, tt.want, tt.msg)
			}
			if id != "" || answer != "" {
				t.Errorf("Start returned id %q and an answer with an error", id)
			}
		})
	}
	if m.Count("s1") != 0 || closed.ea.Forks() != 0 {
		t.Errorf("refused starts left %d listeners, %d forks", m.Count("s1"), closed.ea.Forks())
	}
}

func TestAllListenersCanShareOneUDPPort(t *testing.T) {
	port := freeUDPPort(t)
	m, _ := newManager(t, Config{SinglePort: port})
	c := newCall(t)
	b1, b2 := newBrowser(t, browserOptions{}), newBrowser(t, browserOptions{})
	listen(t, m, b1, "s1", c)
	listen(t, m, b2, "s1", c)
	for _, b := range []*browser{b1, b2} {
		pair, err := b.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("no selected candidate pair: %v", err)
		}
		if int(pair.Remote.Port) != port {
			t.Errorf("browser talks to port %d, want the single port %d", pair.Remote.Port, port)
		}
	}
	c.phoneB.audio(5)
	checkStream(t, "callee", b1.waitFor("callee", 5), 'B', 0)
	checkStream(t, "callee", b2.waitFor("callee", 5), 'B', 0)
}

func TestRebindFollowsAPartyToANewEndpoint(t *testing.T) {
	m, _ := newManager(t, Config{})
	c := newCall(t)
	b := newBrowser(t, browserOptions{})
	listen(t, m, b, "s1", c)
	c.phoneB.audio(5)
	b.waitFor("callee", 5)

	// callctl connected a transfer target itself: a new endpoint faces it.
	eb := c.endpoint(t)
	target := newPhone(t, eb, 'B')
	target.sent = 5
	eb.SetRemote(target.addr(), netip.AddrPort{})
	if err := m.Rebind("s1", "callee", pcmu(eb)); err != nil {
		t.Fatalf("Rebind: %v", err)
	}
	_ = c.eb.Close()
	if eb.Forks() != 1 {
		t.Errorf("new endpoint has %d forks, want 1", eb.Forks())
	}
	target.audio(5)
	checkStream(t, "callee", b.waitFor("callee", 10), 'B', 0)

	err := m.Rebind("s1", "callee", Track{Endpoint: eb, Codec: "PCMA", PayloadType: 8, TelephoneEvent: -1})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Rebind to another codec: err = %v, want ErrInvalidArgument", err)
	}
	if err := m.Rebind("s1", "boss", pcmu(eb)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Rebind of party boss: err = %v, want ErrInvalidArgument", err)
	}
}

func TestNewManagerRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{ICEIPs: []string{"localhost"}},
		{ICEIPs: []string{"0.0.0.0"}},
		{NAT1To1IPs: []string{"example.com"}},
		{PortMin: 5000},
		{PortMin: 6000, PortMax: 5000},
		{SinglePort: 70000},
	} {
		if m, err := NewManager(cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NewManager(%+v): err = %v, want ErrInvalidArgument", cfg, err)
			if m != nil {
				m.Close()
			}
		}
	}
}

func TestAnswerOffersOnlyTheConfiguredAddressesAndPorts(t *testing.T) {
	base := freeUDPPort(t)
	m, _ := newManager(t, Config{PortMin: uint16(base), PortMax: uint16(base + 20), NAT1To1IPs: []string{"127.0.0.2"}})
	c := newCall(t)
	b := newBrowser(t, browserOptions{})
	_, answer, err := m.Start(context.Background(), "s1", "supervisor", b.offer(), pcmu(c.ea), pcmu(c.eb))
	if err != nil {
		t.Fatal(err)
	}
	var candidates int
	for line := range strings.SplitSeq(answer, "\n") {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		candidates++
		f := strings.Fields(line)
		// foundation component transport priority address port typ type
		if len(f) < 8 || f[2] != "udp" || f[4] != "127.0.0.2" || f[7] != "host" {
			t.Errorf("candidate %q: want a UDP host candidate on the NAT address 127.0.0.2", line)
			continue
		}
		if p := atoi(f[5]); p < base || p > base+20 {
			t.Errorf("candidate port %d outside %d-%d", p, base, base+20)
		}
	}
	if candidates == 0 {
		t.Errorf("answer has no candidates:\n%s", answer)
	}
	for _, want := range []string{"a=msid:caller caller", "a=msid:callee callee", "a=sendonly", "PCMU/8000"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "telephone-event") || strings.Contains(answer, "opus") {
		t.Errorf("answer offers more than the call's codec:\n%s", answer)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

// freeUDPPort finds a loopback UDP port with 20 free ones above it.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for p := 36000; p < 40000; p += 50 {
		ok := true
		var conns []*net.UDPConn
		for q := p; q <= p+20; q++ {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(q))))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free UDP ports")
	return 0
}
