package media

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// relayLoop sends one RTP packet from phone A through endpoints a and b to
// phone B and reads it there: one relayed packet, end to end over loopback.
type relayLoop struct {
	c   *call
	pkt []byte
	buf []byte
	dst netip.AddrPort
}

func newRelayLoop(tb testing.TB) *relayLoop {
	tb.Helper()
	c := &call{pool: newTestPool(tb, 2, 0), phoneA: newPhone(tb), phoneB: newPhone(tb)}
	c.a, c.b = allocate(tb, c.pool), allocate(tb, c.pool)
	c.phoneA.sdpOf(c.a)
	c.phoneB.sdpOf(c.b)
	Connect(c.a, c.b)
	c.b.SetPayloadMap(101, 96)
	l := &relayLoop{c: c, pkt: make([]byte, 12+160), buf: make([]byte, 1500), dst: rtpAddr(c.a)}
	l.pkt[0] = 0x80
	binary.BigEndian.PutUint32(l.pkt[8:], 0x1234)
	// One deadline for the whole run: setting it per packet would measure
	// the timer, not the relay.
	if err := c.phoneB.rtp.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		tb.Fatal(err)
	}
	return l
}

func (l *relayLoop) once(tb testing.TB, i int) {
	binary.BigEndian.PutUint16(l.pkt[2:], uint16(i))
	binary.BigEndian.PutUint32(l.pkt[4:], uint32(i)*160)
	if _, err := l.c.phoneA.rtp.WriteToUDPAddrPort(l.pkt, l.dst); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := l.c.phoneB.rtp.ReadFromUDPAddrPort(l.buf); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRelayRTPLoopback measures one packet relayed end to end over
// loopback, including the phones' own send and receive system calls.
func BenchmarkRelayRTPLoopback(b *testing.B) {
	l := newRelayLoop(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.once(b, i)
		i++
	}
}

// BenchmarkRelayReceiveRTP measures the relay hot path without the read
// system call: validate, latch check, count, renumber, send.
func BenchmarkRelayReceiveRTP(b *testing.B) {
	pool := newTestPool(b, 2, 0)
	a, out := allocate(b, pool), allocate(b, pool)
	sink := newPhone(b) // never read: the kernel drops what overflows
	sink.sdpOf(out)
	Connect(a, out)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	a.SetRemote(from, netip.AddrPort{})
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	var rx rxSequence
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		a.receiveRTP(pkt, from, &rx, time.Now())
		i++
	}
}

// BenchmarkRelayReceiveRTPWithEventTap is BenchmarkRelayReceiveRTP with a
// DTMF tap that every packet matches: finding the payload and calling the
// tap must allocate nothing either.
func BenchmarkRelayReceiveRTPWithEventTap(b *testing.B) {
	pool := newTestPool(b, 2, 0)
	a, out := allocate(b, pool), allocate(b, pool)
	sink := newPhone(b)
	sink.sdpOf(out)
	Connect(a, out)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	a.SetRemote(from, netip.AddrPort{})
	var tapped, bytes int
	a.SetEventTap(101, func(ssrc, ts uint32, payload []byte) { tapped++; bytes += len(payload) })
	pkt := make([]byte, 12+4)
	pkt[0], pkt[1] = 0x80, 101
	var rx rxSequence
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		a.receiveRTP(pkt, from, &rx, time.Now())
		i++
	}
	if tapped != i || bytes != 4*i {
		b.Fatalf("tap saw %d packets, %d payload bytes; want %d, %d", tapped, bytes, i, 4*i)
	}
}

// BenchmarkRelayRewrite measures renumbering a packet into an endpoint's
// outgoing stream.
func BenchmarkRelayRewrite(b *testing.B) {
	var s outStream
	s.init(time.Now())
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	src := source{ssrc: 1}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		s.rewrite(pkt, src, true, now)
		i++
	}
}

func TestRelayAllocatesNothingPerPacket(t *testing.T) {
	l := newRelayLoop(t)
	for i := range 10 { // warm up: latching allocates once
		l.once(t, i)
	}
	i := 10
	if allocs := testing.AllocsPerRun(200, func() { l.once(t, i); i++ }); allocs != 0 {
		t.Errorf("relaying one packet end to end allocates %v times, want 0", allocs)
	}
	eventually(t, "counters settle", func() bool { return l.c.b.Stats().PacketsOut == uint64(i) })
	if s := l.c.a.Stats(); s.PacketsIn != uint64(i) || s.Dropped != 0 || s.Lost != 0 {
		t.Errorf("a.Stats() = %+v after %d packets; want all received, none dropped or lost", s, i)
	}
}

func TestRelayWithEventTapAllocatesNothingPerPacket(t *testing.T) {
	l := newRelayLoop(t)
	var tapped atomic.Int64
	l.c.a.SetEventTap(0, func(ssrc, ts uint32, payload []byte) { // every packet of the loop is PT 0
		if len(payload) == 160 {
			tapped.Add(1)
		}
	})
	for i := range 10 {
		l.once(t, i)
	}
	i := 10
	if allocs := testing.AllocsPerRun(200, func() { l.once(t, i); i++ }); allocs != 0 {
		t.Errorf("relaying one packet with an event tap allocates %v times, want 0", allocs)
	}
	eventually(t, "every packet tapped", func() bool { return tapped.Load() == int64(i) })
}
