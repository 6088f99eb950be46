package media

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind, such as
// an endpoint reader that Close did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var loopback = netip.MustParseAddr("127.0.0.1")

// findFreePairs returns an even port p such that p .. p+2*pairs-1 are free
// on 127.0.0.1 right now. It searches 30000-32766: below Linux's ephemeral
// range and outside the default rtp_ports, so other tests on the machine
// rarely take them in between.
func findFreePairs(t testing.TB, pairs int) int {
	t.Helper()
	for range 200 {
		base := 30000 + 2*rand.IntN((32766-30000-2*pairs)/2)
		if portsFree(base, 2*pairs) {
			return base
		}
	}
	t.Fatalf("no %d free port pairs in 30000-32766", pairs)
	return 0
}

func portsFree(base, n int) bool {
	conns := make([]*net.UDPConn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(p))))
		if err != nil {
			return false
		}
		conns = append(conns, c)
	}
	return true
}

// fakeClock drives a pool's rest periods without sleeping.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestPool returns a pool of pairs free port pairs on loopback.
func newTestPool(t testing.TB, pairs int, rest time.Duration) *PortPool {
	t.Helper()
	base := findFreePairs(t, pairs)
	p, err := NewPortPool(base, base+2*pairs-1, rest)
	if err != nil {
		t.Fatalf("NewPortPool: %v", err)
	}
	return p
}

// allocate opens an endpoint on loopback, closed when the test ends.
func allocate(t testing.TB, p *PortPool) *Endpoint {
	t.Helper()
	return allocateWith(t, p, LatchStrict)
}

func allocateWith(t testing.TB, p *PortPool, l Latching) *Endpoint {
	t.Helper()
	e, err := p.Allocate(EndpointConfig{IP: loopback, Latching: l})
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func rtpAddr(e *Endpoint) netip.AddrPort  { return netip.AddrPortFrom(loopback, uint16(e.Port())) }
func rtcpAddr(e *Endpoint) netip.AddrPort { return netip.AddrPortFrom(loopback, uint16(e.Port()+1)) }

// phone plays a SIP phone's media side: an RTP and an RTCP socket on
// loopback, sending to and receiving from callctl's endpoint.
type phone struct {
	t           testing.TB
	rtp, rtcp   *net.UDPConn
	sendBuf     []byte
	recvBuf     []byte
	recvTimeout time.Duration
}

func newPhone(t testing.TB) *phone { t.Helper(); return newPhoneAt(t, loopback) }

// newPhoneAt is a phone on another loopback address, such as 127.0.0.2: a
// different host as far as latching can tell.
func newPhoneAt(t testing.TB, ip netip.Addr) *phone {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatalf("phone socket: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	return &phone{t: t, rtp: listen(), rtcp: listen(), sendBuf: make([]byte, 1500), recvBuf: make([]byte, 1500),
		recvTimeout: 2 * time.Second}
}

func (p *phone) rtpAddr() netip.AddrPort  { return p.rtp.LocalAddr().(*net.UDPAddr).AddrPort() }
func (p *phone) rtcpAddr() netip.AddrPort { return p.rtcp.LocalAddr().(*net.UDPAddr).AddrPort() }

// sdpOf points e at the phone, as the phone's SDP would.
func (p *phone) sdpOf(e *Endpoint) { e.SetRemote(p.rtpAddr(), p.rtcpAddr()) }

func (p *phone) send(to netip.AddrPort, pkt *rtp.Packet) {
	p.t.Helper()
	n, err := pkt.MarshalTo(p.sendBuf)
	if err != nil {
		p.t.Fatalf("marshal: %v", err)
	}
	p.sendRaw(p.rtp, to, p.sendBuf[:n])
}

func (p *phone) sendRaw(c *net.UDPConn, to netip.AddrPort, b []byte) {
	p.t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatalf("phone send: %v", err)
	}
}

// recvRaw waits for one datagram on c.
func (p *phone) recvRaw(c *net.UDPConn) ([]byte, netip.AddrPort) {
	p.t.Helper()
	b, from, err := p.tryRecv(c, p.recvTimeout)
	if err != nil {
		p.t.Fatalf("phone on %v received nothing: %v", c.LocalAddr(), err)
	}
	return b, from
}

func (p *phone) tryRecv(c *net.UDPConn, timeout time.Duration) ([]byte, netip.AddrPort, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, netip.AddrPort{}, err
	}
	n, from, err := c.ReadFromUDPAddrPort(p.recvBuf)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return append([]byte(nil), p.recvBuf[:n]...), from, nil
}

func (p *phone) recv() *rtp.Packet {
	p.t.Helper()
	b, _ := p.recvRaw(p.rtp)
	var pkt rtp.Packet
	if err := pkt.Unmarshal(b); err != nil {
		p.t.Fatalf("phone received a non-RTP packet: %v", err)
	}
	return &pkt
}

// expectSilence fails if the phone's RTP socket receives anything soon.
func (p *phone) expectSilence(what string) {
	p.t.Helper()
	if b, from, err := p.tryRecv(p.rtp, 150*time.Millisecond); err == nil {
		p.t.Fatalf("%s: phone received %d bytes from %v, want nothing", what, len(b), from)
	} else if !isTimeout(err) {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stream builds consecutive RTP packets of one source, 20 ms of PCMU each.
type stream struct {
	ssrc uint32
	seq  uint16
	ts   uint32
	pt   uint8
}

func (s *stream) next(payload ...byte) *rtp.Packet {
	if len(payload) == 0 {
		payload = make([]byte, 160)
		for i := range payload {
			payload[i] = byte(s.seq) + byte(i)
		}
	}
	p := &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: s.pt, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: s.ssrc},
		Payload: payload,
	}
	s.seq++
	s.ts += 160
	return p
}

// eventually polls cond for up to two seconds: counters are bumped after
// the packet is on the wire, so a receiver can see it first.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
