package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// forkInto installs a fork on e that hands copies of what it sees to a
// channel.
func forkInto(t *testing.T, e *Endpoint) (<-chan ForkedPacket, func()) {
	t.Helper()
	ch := make(chan ForkedPacket, 32)
	remove, err := e.AddFork(func(p ForkedPacket) {
		p.Payload = bytes.Clone(p.Payload)
		ch <- p
	})
	if err != nil {
		t.Fatalf("AddFork: %v", err)
	}
	return ch, remove
}

func expectForked(t *testing.T, ch <-chan ForkedPacket, want *rtp.Packet) {
	t.Helper()
	select {
	case got := <-ch:
		if got.PayloadType != want.PayloadType || got.Marker != want.Marker || got.SequenceNumber != want.SequenceNumber ||
			got.Timestamp != want.Timestamp || got.SSRC != want.SSRC || !bytes.Equal(got.Payload, want.Payload) {
			t.Errorf("fork saw PT %d M %v seq %d ts %d SSRC %#x payload %x;\nwant PT %d M %v seq %d ts %d SSRC %#x payload %x",
				got.PayloadType, got.Marker, got.SequenceNumber, got.Timestamp, got.SSRC, got.Payload,
				want.PayloadType, want.Marker, want.SequenceNumber, want.Timestamp, want.SSRC, want.Payload)
		}
		if got.Received.IsZero() {
			t.Error("fork saw a zero Received time")
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("fork not called; want seq %d", want.SequenceNumber)
	}
}

func expectNotForked(t *testing.T, ch <-chan ForkedPacket, what string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Errorf("%s: fork saw seq %d SSRC %#x, want no call", what, got.SequenceNumber, got.SSRC)
	default:
	}
}

func TestForkSeesWhatThePartySendsAsSentWhileTheRelayGoesOn(t *testing.T) {
	c := newCall(t, 2)
	c.b.SetPayloadMap(101, 96)
	forked, _ := forkInto(t, c.a)

	src := &stream{ssrc: 0xA, seq: 100, ts: 16000, pt: 0}
	p := src.next()
	p.Marker = true
	c.phoneA.send(rtpAddr(c.a), p)
	if got := c.phoneB.recv(); !bytes.Equal(got.Payload, p.Payload) || got.SSRC == p.SSRC {
		t.Errorf("relayed packet SSRC %#x payload %x; want callctl's SSRC and the payload sent", got.SSRC, got.Payload)
	}
	expectForked(t, forked, p) // the party's own header, not the relay's rewrite

	// Telephone-event is forked with the party's payload type, not the
	// mapped one, and with its header extension and CSRC skipped.
	ev := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 101, Timestamp: 16160, SSRC: 0xA,
		CSRC: []uint32{7}}, Payload: []byte{1, 0x0a, 0, 160}}
	if err := ev.SetExtension(1, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	c.phoneA.send(rtpAddr(c.a), ev)
	if got := c.phoneB.recv(); got.PayloadType != 96 {
		t.Errorf("event relayed as PT %d, want 96", got.PayloadType)
	}
	expectForked(t, forked, ev)

	// Hold: nothing relayed, still forked.
	c.a.Disconnect()
	p = src.next()
	c.phoneA.send(rtpAddr(c.a), p)
	expectForked(t, forked, p)
	c.phoneB.expectSilence("disconnected")

	// A packet from another source is refused, and not forked.
	intruder := newPhone(t)
	intruder.send(rtpAddr(c.a), (&stream{ssrc: 666, pt: 0}).next())
	eventually(t, "the intruder's packet is dropped", func() bool { return c.a.Stats().Dropped >= 2 })
	expectNotForked(t, forked, "a packet from a source other than the latched one")
	// The other direction is not forked on a.
	Connect(c.a, c.b)
	c.phoneB.send(rtpAddr(c.b), (&stream{ssrc: 0xB, pt: 0}).next())
	c.phoneA.recv()
	expectNotForked(t, forked, "what the other party sends")
}

func TestForksAreCalledInOrderAndRemovedOneByOne(t *testing.T) {
	c := newCall(t, 2)
	var order []string
	seen := make(chan struct{}, 8)
	add := func(name string) func() {
		remove, err := c.a.AddFork(func(ForkedPacket) {
			order = append(order, name)
			seen <- struct{}{}
		})
		if err != nil {
			t.Fatalf("AddFork: %v", err)
		}
		return remove
	}
	r1, r2, r3 := add("1"), add("2"), add("3")
	if n := c.a.Forks(); n != 3 {
		t.Fatalf("Forks() = %d, want 3", n)
	}
	src := &stream{ssrc: 1, pt: 0}
	send := func(calls int) {
		t.Helper()
		c.phoneA.send(rtpAddr(c.a), src.next())
		c.phoneB.recv()
		for range calls {
			select {
			case <-seen:
			case <-time.After(2 * time.Second):
				t.Fatal("a fork was not called")
			}
		}
	}
	send(3)
	r2()
	r2() // idempotent
	send(2)
	r1()
	r3()
	if n := c.a.Forks(); n != 0 {
		t.Errorf("Forks() = %d after removing all, want 0", n)
	}
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneB.recv()
	if got := strings.Join(order, " "); got != "1 2 3 1 3" {
		t.Errorf("forks called in order %v, want 1 2 3 1 3 and nothing after removal", order)
	}
}

func TestCloseRemovesForksAndAddForkAfterCloseFails(t *testing.T) {
	c := newCall(t, 2)
	_, remove := forkInto(t, c.a)
	if err := c.a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := c.a.Forks(); n != 0 {
		t.Errorf("Forks() = %d after Close, want 0", n)
	}
	remove() // harmless after Close
	if _, err := c.a.AddFork(func(ForkedPacket) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("AddFork after Close: err = %v, want ErrClosed", err)
	}
	if _, err := c.b.AddFork(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("AddFork(nil): err = %v, want ErrInvalidArgument", err)
	}
}

// forkedReceive sets up a as in BenchmarkRelayReceiveRTP with n forks that
// each count packets and payload bytes.
func forkedReceive(tb testing.TB, forks int) (recv func(i int), count func() (packets, bytes int64)) {
	pool := newTestPool(tb, 2, 0)
	a, out := allocate(tb, pool), allocate(tb, pool)
	sink := newPhone(tb) // never read: the kernel drops what overflows
	sink.sdpOf(out)
	Connect(a, out)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	a.SetRemote(from, netip.AddrPort{})
	var packets, payload atomic.Int64
	for range forks {
		if _, err := a.AddFork(func(p ForkedPacket) {
			packets.Add(1)
			payload.Add(int64(len(p.Payload)))
		}); err != nil {
			tb.Fatal(err)
		}
	}
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	var rx rxSequence
	return func(i int) {
			binary.BigEndian.PutUint16(pkt[2:], uint16(i))
			binary.BigEndian.PutUint32(pkt[4:], uint32(i)*160)
			a.receiveRTP(pkt, from, &rx, time.Now())
		}, func() (int64, int64) {
			return packets.Load(), payload.Load()
		}
}

func benchmarkRelayReceiveRTPWithForks(b *testing.B, forks int) {
	recv, count := forkedReceive(b, forks)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		recv(i)
		i++
	}
	if p, n := count(); p != int64(forks*i) || n != int64(forks*i*160) {
		b.Fatalf("forks saw %d packets, %d payload bytes; want %d, %d", p, n, forks*i, forks*i*160)
	}
}

// BenchmarkRelayReceiveRTPWithFork is BenchmarkRelayReceiveRTP with one
// listener's fork: still no allocation per packet.
func BenchmarkRelayReceiveRTPWithFork(b *testing.B) { benchmarkRelayReceiveRTPWithForks(b, 1) }

// BenchmarkRelayReceiveRTPWith10Forks: ten listeners cost ten calls, no
// allocation.
func BenchmarkRelayReceiveRTPWith10Forks(b *testing.B) { benchmarkRelayReceiveRTPWithForks(b, 10) }

func TestRelayWithForksAllocatesNothingPerPacket(t *testing.T) {
	for _, forks := range []int{1, 10} {
		recv, count := forkedReceive(t, forks)
		for i := range 10 { // warm up: latching allocates once
			recv(i)
		}
		i := 10
		if allocs := testing.AllocsPerRun(200, func() { recv(i); i++ }); allocs != 0 {
			t.Errorf("receiving one packet with %d forks allocates %v times, want 0", forks, allocs)
		}
		if p, _ := count(); p != int64(forks*i) {
			t.Errorf("%d forks saw %d packets, want %d", forks, p, forks*i)
		}
	}
}
