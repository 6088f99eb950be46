package listen

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// newManager returns a manager on loopback, closed when the test ends, and
// a channel of the listeners it reports ended.
func newManager(t *testing.T, cfg Config) (*Manager, <-chan ended) {
	t.Helper()
	if cfg.ICEIPs == nil {
		cfg.ICEIPs = []string{"127.0.0.1"}
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(m.Close)
	ch := make(chan ended, 16)
	m.OnEnded(func(id, session, client, reason string) { ch <- ended{id, session, client, reason} })
	return m, ch
}

type ended struct{ id, session, client, reason string }

func expectEnded(t *testing.T, ch <-chan ended, want ended, within time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("OnEnded(%+v), want %+v", got, want)
		}
	case <-time.After(within):
		t.Fatalf("OnEnded not called within %v; want %+v", within, want)
	}
	select {
	case got := <-ch:
		t.Errorf("OnEnded called again: %+v", got)
	default:
	}
}

// call is the media side of a call through callctl: an endpoint per party,
// relaying to each other, and a phone per party sending RTP to its
// endpoint.
type call struct {
	pool           *media.PortPool
	ea, eb         *media.Endpoint
	phoneA, phoneB *phone
}

func newCall(t *testing.T) *call {
	t.Helper()
	var pool *media.PortPool
	for range 20 {
		base := 33000 + 2*rand.IntN(1000)
		p, err := media.NewPortPool(base, base+39, 0)
		if err == nil {
			pool = p
			break
		}
	}
	if pool == nil {
		t.Fatal("no port pool")
	}
	c := &call{pool: pool}
	c.ea, c.eb = c.endpoint(t), c.endpoint(t)
	c.phoneA, c.phoneB = newPhone(t, c.ea, 'A'), newPhone(t, c.eb, 'B')
	c.ea.SetRemote(c.phoneA.addr(), netip.AddrPort{})
	c.eb.SetRemote(c.phoneB.addr(), netip.AddrPort{})
	media.Connect(c.ea, c.eb)
	return c
}

func (c *call) endpoint(t *testing.T) *media.Endpoint {
	t.Helper()
	e, err := c.pool.Allocate(media.EndpointConfig{IP: loopback})
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func pcmu(e *media.Endpoint) Track {
	return Track{Endpoint: e, Codec: "PCMU", PayloadType: 0, TelephoneEvent: 101}
}

// phone sends RTP to its endpoint: 20 ms PCMU packets whose payload says
// which phone and which packet (tag, then a count), telephone-events and
// comfort noise.
type phone struct {
	t    *testing.T
	conn *net.UDPConn
	to   netip.AddrPort
	tag  byte
	ssrc uint32
	seq  uint16
	ts   uint32
	sent int // audio packets
	buf  []byte
	// seal, if set, turns each packet into what goes on the wire (an SRTP
	// phone's encryption).
	seal func([]byte) []byte
}

func newPhone(t *testing.T, e *media.Endpoint, tag byte) *phone {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &phone{t: t, conn: conn, to: netip.AddrPortFrom(loopback, uint16(e.Port())), tag: tag,
		ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), buf: make([]byte, 1500)}
}

func (p *phone) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// newSource makes the phone's stream start over as a new source (a
// re-INVITE, a transfer): new SSRC, sequence and timestamp.
func (p *phone) newSource() {
	p.ssrc, p.seq, p.ts = rand.Uint32(), uint16(rand.Uint32()), rand.Uint32()
}

func (p *phone) send(pt uint8, marker bool, payload []byte, dur uint32) {
	p.t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc},
		Payload: payload}
	n, err := pkt.MarshalTo(p.buf)
	if err != nil {
		p.t.Fatal(err)
	}
	wire := p.buf[:n]
	if p.seal != nil {
		wire = p.seal(wire)
	}
	if _, err := p.conn.WriteToUDPAddrPort(wire, p.to); err != nil {
		p.t.Fatal(err)
	}
	p.seq++
	p.ts += dur
}

// audio sends n packets of audio, 20 ms apart in RTP time, paced at 2 ms.
func (p *phone) audio(n int) {
	for range n {
		payload := make([]byte, 160)
		payload[0], payload[1] = p.tag, byte(p.sent)
		binary.BigEndian.PutUint16(payload[2:], uint16(p.sent))
		p.sent++
		p.send(0, false, payload, 160)
		time.Sleep(2 * time.Millisecond)
	}
}

// dtmf sends a digit as RFC 4733 events (PT 101) and a comfort-noise
// packet (PT 13), neither of which may reach the listener.
func (p *phone) dtmf() {
	p.send(101, true, []byte{5, 0x0a, 0, 160}, 0)
	p.send(101, false, []byte{5, 0x0a, 1, 64}, 0)
	p.send(101, false, []byte{5, 0x8a, 1, 224}, 480)
	p.send(13, false, []byte{40}, 160)
}

// browser plays the supervisor's browser: a pion PeerConnection offering
// two receive-only audio transceivers, recording what each track gets.
type browser struct {
	t  *testing.T
	pc *webrtc.PeerConnection

	mu      sync.Mutex
	got     map[string][]*rtp.Packet // by media stream id
	arrived chan struct{}
}

type browserOptions struct {
	codecs []webrtc.RTPCodecParameters // default PCMU, PCMA, opus
	conn   net.PacketConn              // if set, all ICE goes through it
	audio  int                         // recvonly audio transceivers; default 2
}

func newBrowser(t *testing.T, o browserOptions) *browser {
	t.Helper()
	if o.codecs == nil {
		o.codecs = []webrtc.RTPCodecParameters{
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
		}
	}
	if o.audio == 0 {
		o.audio = 2
	}
	var me webrtc.MediaEngine
	for _, c := range o.codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = pionLogs{log: zap.NewNop()} // a vanishing browser is expected to complain
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, o.conn))
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	b := &browser{t: t, pc: pc, got: map[string][]*rtp.Packet{}, arrived: make(chan struct{}, 1)}
	for range o.audio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.got[track.StreamID()] = append(b.got[track.StreamID()], p)
			b.mu.Unlock()
			select {
			case b.arrived <- struct{}{}:
			default:
			}
		}
	})
	return b
}

// offer returns the browser's offer with its candidates.
func (b *browser) offer() string {
	b.t.Helper()
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(offer); err != nil {
		b.t.Fatal(err)
	}
	<-gathered
	return b.pc.LocalDescription().SDP
}

func (b *browser) accept(answer string) {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		b.t.Fatalf("browser refuses the answer: %v\n%s", err, answer)
	}
}

// packets returns a copy of what the track of a stream got so far.
func (b *browser) packets(stream string) []*rtp.Packet {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*rtp.Packet(nil), b.got[stream]...)
}

// waitFor waits until the stream has n packets and returns them.
func (b *browser) waitFor(stream string, n int) []*rtp.Packet {
	b.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if got := b.packets(stream); len(got) >= n {
			return got
		}
		select {
		case <-b.arrived:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			b.t.Fatalf("track %q got %d packets, want %d", stream, len(b.packets(stream)), n)
		}
	}
}

// listen starts a listener for the browser on the call and waits until it
// is connected.
func listen(t *testing.T, m *Manager, b *browser, session string, c *call) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, answer, err := m.Start(ctx, session, "supervisor", b.offer(), pcmu(c.ea), pcmu(c.eb))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	b.accept(answer)
	eventually(t, "the listener is connected", func() bool {
		info, ok := m.Lookup(id)
		return ok && info.Connected
	})
	return id
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
