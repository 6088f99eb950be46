package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// call is two endpoints relaying between phone A and phone B, each phone's
// SDP address given to its endpoint.
type call struct {
	pool           *PortPool
	a, b           *Endpoint
	phoneA, phoneB *phone
}

func newCall(t *testing.T, pairs int) *call {
	t.Helper()
	c := &call{pool: newTestPool(t, pairs, 0), phoneA: newPhone(t), phoneB: newPhone(t)}
	c.a, c.b = allocate(t, c.pool), allocate(t, c.pool)
	c.phoneA.sdpOf(c.a)
	c.phoneB.sdpOf(c.b)
	Connect(c.a, c.b)
	return c
}

func TestRelayForwardsRTPInOwnContinuousStream(t *testing.T) {
	c := newCall(t, 2)
	// Start near the wrap to check the sequence arithmetic is modulo 2^16.
	src := &stream{ssrc: 0x11111111, seq: 65530, ts: 4294967000, pt: 0}
	const n = 12
	sent := make([]*rtp.Packet, n)
	for i := range n {
		sent[i] = src.next()
		c.phoneA.send(rtpAddr(c.a), sent[i])
	}

	var first *rtp.Packet
	for i := range n {
		got := c.phoneB.recv()
		if i == 0 {
			first = got
		}
		if got.SSRC != c.b.SSRC() || got.SSRC == src.ssrc {
			t.Fatalf("packet %d: SSRC %#x, want endpoint b's own %#x", i, got.SSRC, c.b.SSRC())
		}
		if want := first.SequenceNumber + uint16(i); got.SequenceNumber != want {
			t.Fatalf("packet %d: seq %d, want %d (continuous)", i, got.SequenceNumber, want)
		}
		if want := first.Timestamp + uint32(160*i); got.Timestamp != want {
			t.Fatalf("packet %d: ts %d, want %d (source spacing kept)", i, got.Timestamp, want)
		}
		if got.Marker != (i == 0) {
			t.Errorf("packet %d: marker %v, want it only on the first packet of the stream", i, got.Marker)
		}
		if got.PayloadType != 0 || !bytes.Equal(got.Payload, sent[i].Payload) {
			t.Fatalf("packet %d: PT %d payload %x..., want PT 0 and the payload sent", i, got.PayloadType, got.Payload[:4])
		}
	}

	eventually(t, "counters settle", func() bool { return c.b.Stats().PacketsOut == n })
	in, out := c.a.Stats(), c.b.Stats()
	if in.PacketsIn != n || in.BytesIn != n*(12+160) || in.Lost != 0 || in.Dropped != 0 || in.LastIn.IsZero() {
		t.Errorf("a.Stats() = %+v; want %d packets, %d bytes in, none lost or dropped, LastIn set", in, n, n*(12+160))
	}
	if out.PacketsOut != n || out.BytesOut != n*(12+160) {
		t.Errorf("b.Stats() = %+v; want %d packets, %d bytes out", out, n, n*(12+160))
	}
	if c.a.LastActivity().IsZero() || c.b.LastActivity() != (time.Time{}) {
		t.Errorf("LastActivity: a %v, b %v; want a set and b zero (b's phone sent nothing)", c.a.LastActivity(), c.b.LastActivity())
	}

	// And the other way round, in a's own stream.
	back := &stream{ssrc: 0x22222222, seq: 7, ts: 99, pt: 8}
	c.phoneB.send(rtpAddr(c.b), back.next())
	if got := c.phoneA.recv(); got.SSRC != c.a.SSRC() || got.PayloadType != 8 {
		t.Errorf("B to A: SSRC %#x PT %d, want a's SSRC %#x and PT 8", got.SSRC, got.PayloadType, c.a.SSRC())
	}
	if c.a.SSRC() == c.b.SSRC() {
		t.Errorf("both endpoints chose SSRC %#x; want a random one each", c.a.SSRC())
	}
}

func TestLatchingRepliesToPacketSourceNotSDPAddress(t *testing.T) {
	c := newCall(t, 2)
	// Phone A's SDP names a port it does not send from (NAT, or a phone
	// that sends from another socket).
	sdpPhone := newPhone(t)
	sdpPhone.sdpOf(c.a)
	toA := &stream{ssrc: 2, pt: 0}
	fromA := &stream{ssrc: 1, pt: 0}

	// Before phone A sends anything, callctl can only use the SDP address.
	c.phoneB.send(rtpAddr(c.b), toA.next())
	sdpPhone.recv()

	c.phoneA.send(rtpAddr(c.a), fromA.next())
	c.phoneB.recv()
	if rtpTo, _ := c.a.Remote(); rtpTo != c.phoneA.rtpAddr() {
		t.Fatalf("a.Remote() = %v after phone A's first packet, want its source %v", rtpTo, c.phoneA.rtpAddr())
	}
	c.phoneB.send(rtpAddr(c.b), toA.next())
	c.phoneA.recv()
	sdpPhone.expectSilence("SDP address after latching")

	// RTCP latches on its own socket.
	rr := rtcpReceiverReport(1)
	c.phoneA.sendRaw(c.phoneA.rtcp, rtcpAddr(c.a), rr)
	c.phoneB.recvRaw(c.phoneB.rtcp)
	if _, rtcpTo := c.a.Remote(); rtcpTo != c.phoneA.rtcpAddr() {
		t.Errorf("a's RTCP remote = %v, want phone A's RTCP source %v", rtcpTo, c.phoneA.rtcpAddr())
	}

	// The same SDP again (a hold, an unhold) keeps the latch.
	sdpPhone.sdpOf(c.a)
	c.phoneB.send(rtpAddr(c.b), toA.next())
	c.phoneA.recv()

	// An SDP that moves phone A's media forgets it.
	moved := newPhone(t)
	moved.sdpOf(c.a)
	c.phoneB.send(rtpAddr(c.b), toA.next())
	moved.recv()
}

func TestLatchedEndpointDropsPacketsFromOtherSources(t *testing.T) {
	c := newCall(t, 2)
	fromA := &stream{ssrc: 1}
	c.phoneA.send(rtpAddr(c.a), fromA.next())
	c.phoneB.recv()

	intruder := newPhone(t)
	intruder.send(rtpAddr(c.a), (&stream{ssrc: 666}).next())
	c.phoneB.expectSilence("packet from a source other than the latched one")
	eventually(t, "the intruder's packet is counted as dropped", func() bool { return c.a.Stats().Dropped == 1 })
	if s := c.a.Stats(); s.Foreign != 1 || c.pool.ForeignDropped() != 1 {
		t.Errorf("Foreign = %d, pool ForeignDropped = %d; want 1 each", s.Foreign, c.pool.ForeignDropped())
	}
	if got := c.a.Stats().PacketsIn; got != 1 {
		t.Errorf("PacketsIn = %d, want 1 (the intruder's packet is not received RTP)", got)
	}
}

func TestMalformedPacketsAreDroppedWithoutLatching(t *testing.T) {
	c := newCall(t, 2)
	stranger := newPhone(t)
	tests := []struct {
		name string
		pkt  []byte
	}{
		{name: "shorter than an RTP header", pkt: []byte{0x80, 0, 0, 1, 0, 0}},
		{name: "version 0 (a STUN binding request)", pkt: append([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 12)...)},
		{name: "version 1", pkt: append([]byte{0x40, 0}, make([]byte, 20)...)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stranger.sendRaw(stranger.rtp, rtpAddr(c.a), tt.pkt)
			eventually(t, "the packet is counted as dropped", func() bool { return c.a.Stats().Dropped == uint64(i+1) })
			if rtpTo, _ := c.a.Remote(); rtpTo != c.phoneA.rtpAddr() {
				t.Errorf("a latched onto %v, want it still on the SDP address %v", rtpTo, c.phoneA.rtpAddr())
			}
		})
	}
	c.phoneB.expectSilence("malformed packets")
	if s := c.a.Stats(); s.PacketsIn != 0 || !c.a.LastActivity().IsZero() {
		t.Errorf("a.Stats() = %+v, LastActivity %v; want no packet counted as received", s, c.a.LastActivity())
	}
}

func TestConnectSwapContinuesSequenceWithMarker(t *testing.T) {
	c := newCall(t, 3)
	fromB := &stream{ssrc: 0xB, seq: 50000, ts: 1000, pt: 0}
	var last *rtp.Packet
	for range 5 {
		c.phoneB.send(rtpAddr(c.b), fromB.next())
		last = c.phoneA.recv()
	}

	// Blind transfer: phone A now talks to phone C, whose stream has its own
	// SSRC, sequence numbers and timestamps.
	phoneC, cEnd := newPhone(t), allocate(t, c.pool)
	phoneC.sdpOf(cEnd)
	Connect(c.a, cEnd)
	if c.b.Peer() != nil {
		t.Fatalf("b still relays into %v after a was connected to c; want nil", c.b.Peer())
	}
	const gap = 60 * time.Millisecond
	time.Sleep(gap)

	fromC := &stream{ssrc: 0xC, seq: 12, ts: 777777, pt: 0}
	for i := range 3 {
		phoneC.send(rtpAddr(cEnd), fromC.next())
		got := c.phoneA.recv()
		if got.SSRC != c.a.SSRC() {
			t.Fatalf("after swap packet %d: SSRC %#x, want a's unchanged %#x", i, got.SSRC, c.a.SSRC())
		}
		if want := last.SequenceNumber + 1 + uint16(i); got.SequenceNumber != want {
			t.Fatalf("after swap packet %d: seq %d, want %d", i, got.SequenceNumber, want)
		}
		if got.Marker != (i == 0) {
			t.Errorf("after swap packet %d: marker %v, want it on the first only", i, got.Marker)
		}
		if i == 0 {
			// The timestamp advances by the silence at 8 kHz (plus the
			// time the packets spent in flight), not by C's own numbers.
			adv := got.Timestamp - last.Timestamp
			if minAdv, maxAdv := uint32(gap.Milliseconds()*8), uint32(8000); adv < minAdv || adv > maxAdv {
				t.Errorf("timestamp advanced by %d across the swap, want %d..%d (%v at 8 kHz)", adv, minAdv, maxAdv, gap)
			}
		}
	}

	// Phone B, no longer connected, is counted and dropped.
	c.phoneB.send(rtpAddr(c.b), fromB.next())
	c.phoneA.expectSilence("B after the swap")
	eventually(t, "B's packet is dropped", func() bool { return c.b.Stats().Dropped == 1 })
	if got := c.b.Stats().PacketsIn; got != 6 {
		t.Errorf("b.PacketsIn = %d, want 6 (counted even when not relayed)", got)
	}
}

func TestDisconnectCountsButDropsPackets(t *testing.T) {
	c := newCall(t, 2)
	src := &stream{ssrc: 1}
	c.phoneA.send(rtpAddr(c.a), src.next())
	before := c.phoneB.recv()

	c.a.Disconnect()
	for range 3 {
		c.phoneA.send(rtpAddr(c.a), src.next())
	}
	c.phoneB.expectSilence("disconnected endpoint")
	eventually(t, "packets counted", func() bool { s := c.a.Stats(); return s.PacketsIn == 4 && s.Dropped == 3 })

	// The other direction still flows until b is disconnected too.
	c.phoneB.send(rtpAddr(c.b), (&stream{ssrc: 2}).next())
	c.phoneA.recv()

	// Reconnecting (unhold) resumes B's stream right after the last packet
	// it got, as a new talkspurt, not with a gap of the dropped packets.
	Connect(c.a, c.b)
	c.phoneA.send(rtpAddr(c.a), src.next())
	if got := c.phoneB.recv(); !got.Marker || got.SequenceNumber != before.SequenceNumber+1 {
		t.Errorf("first packet after reconnecting: seq %d marker %v; want seq %d with the marker (RFC 3550 §5.1)",
			got.SequenceNumber, got.Marker, before.SequenceNumber+1)
	}
}

func TestCloseWaitsForThePacketBeingHandled(t *testing.T) {
	c := newCall(t, 2)
	// Slow the handling of a packet down, so that a Close that does not
	// wait for it would return while the poller still uses the endpoint
	// (and could read a reused descriptor after Close).
	var started, finished atomic.Int32
	hook := func() {
		started.Add(1)
		time.Sleep(50 * time.Millisecond)
		finished.Add(1)
	}
	c.pool.packetHook.Store(&hook)
	c.phoneA.send(rtpAddr(c.a), (&stream{ssrc: 1}).next())
	eventually(t, "the packet is being handled", func() bool { return started.Load() == 1 })
	if err := c.a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := finished.Load(); n != 1 {
		t.Errorf("Close returned while the packet was still being handled")
	}
}

// TestClosingTheLastEndpointStopsThePollers: an idle process keeps no
// poller goroutine (goleak checks the package at the end, too).
func TestClosingTheLastEndpointStopsThePollers(t *testing.T) {
	eventually(t, "earlier tests' pollers gone", func() bool { return pollerGoroutines() == 0 })
	pool := newTestPool(t, 4, 0)
	var eps []*Endpoint
	for range 4 {
		eps = append(eps, allocate(t, pool))
	}
	if n := pollerGoroutines(); n == 0 || n > runtime.GOMAXPROCS(0) {
		t.Fatalf("%d poller goroutines for 4 endpoints, want 1..%d", n, runtime.GOMAXPROCS(0))
	}
	for _, e := range eps {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := pollerGoroutines(); n != 0 {
		t.Errorf("%d poller goroutines left after the last Close returned", n)
	}
}

// TestPollerForgetsClosedEndpointsWithoutPackets: endpoints opened and
// closed while no packet arrives (a signalling flood, calls with no RTP
// yet) are let go of, not queued until the next packet.
func TestPollerForgetsClosedEndpointsWithoutPackets(t *testing.T) {
	pool := newTestPool(t, 8, 0)
	keep := allocate(t, pool) // keeps the poller running
	for range 500 {
		e := allocate(t, pool)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var queued int
	eventually(t, "the poller applies the queued changes", func() bool {
		keep.poller.pendingMu.Lock()
		queued = len(keep.poller.pending)
		keep.poller.pendingMu.Unlock()
		return queued < pendingWake
	})
	t.Logf("%d changes queued after 500 endpoints came and went", queued)
}

// pollerGoroutines counts poller goroutines, right now (goleak would wait
// for them to finish, which is not the question here).
func pollerGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("created by github.com/callctl/callctl/internal/media.(*pollerSlot).register "))
}

func TestPayloadMapRewritesRelayedPayloadType(t *testing.T) {
	c := newCall(t, 2)
	// Leg A uses 101 for telephone-event, leg B 96.
	c.b.SetPayloadMap(101, 96)
	c.a.SetPayloadMap(96, 101)
	tests := []struct {
		name   string
		from   *phone
		to     *phone
		sendTo *Endpoint
		pt     uint8
		marker bool
		wantPT uint8
	}{
		{name: "mapped A to B", from: c.phoneA, to: c.phoneB, sendTo: c.a, pt: 101, marker: true, wantPT: 96},
		{name: "unmapped A to B", from: c.phoneA, to: c.phoneB, sendTo: c.a, pt: 0, wantPT: 0},
		{name: "mapped B to A", from: c.phoneB, to: c.phoneA, sendTo: c.b, pt: 96, wantPT: 101},
	}
	seq := uint16(100)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq++
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: tt.pt, Marker: tt.marker, SequenceNumber: seq, SSRC: 5},
				Payload: []byte{1, 0x8a, 0, 160}}
			tt.from.send(rtpAddr(tt.sendTo), pkt)
			got := tt.to.recv()
			if got.PayloadType != tt.wantPT {
				t.Errorf("PT %d arrived as %d, want %d", tt.pt, got.PayloadType, tt.wantPT)
			}
			if tt.marker && !got.Marker {
				t.Errorf("the source's marker bit was lost")
			}
			if !bytes.Equal(got.Payload, pkt.Payload) {
				t.Errorf("payload %x, want %x", got.Payload, pkt.Payload)
			}
		})
	}

	c.b.ResetPayloadMap()
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SSRC: 5, SequenceNumber: 200}})
	if got := c.phoneB.recv(); got.PayloadType != 101 {
		t.Errorf("after ResetPayloadMap PT 101 arrived as %d, want 101", got.PayloadType)
	}
}

func TestWriteRTPJoinsTheOutgoingStream(t *testing.T) {
	c := newCall(t, 2)
	c.b.SetPayloadMap(101, 96)
	src := &stream{ssrc: 1, seq: 9000, ts: 5000}
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneB.recv()
	last := c.phoneB.recv()

	// callctl injects a DTMF event in leg B's own payload type 101... which
	// is not mapped: injected packets are already in the leg's types.
	dtmf := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 1, Timestamp: 1, SSRC: 0xD7},
		Payload: []byte{5, 0x0a, 0, 0}}
	if err := c.b.WriteRTP(dtmf); err != nil {
		t.Fatalf("WriteRTP: %v", err)
	}
	got := c.phoneB.recv()
	if got.SSRC != c.b.SSRC() || got.SequenceNumber != last.SequenceNumber+1 || !got.Marker || got.PayloadType != 101 {
		t.Fatalf("injected packet: SSRC %#x seq %d marker %v PT %d; want %#x, %d, true, 101",
			got.SSRC, got.SequenceNumber, got.Marker, got.PayloadType, c.b.SSRC(), last.SequenceNumber+1)
	}
	if int32(got.Timestamp-last.Timestamp) < 0 {
		t.Errorf("injected timestamp %d went backwards from %d", got.Timestamp, last.Timestamp)
	}

	// Back to relayed audio: still one stream.
	c.phoneA.send(rtpAddr(c.a), src.next())
	if got := c.phoneB.recv(); got.SequenceNumber != last.SequenceNumber+2 || !got.Marker {
		t.Errorf("relayed after injection: seq %d marker %v, want %d and a marker", got.SequenceNumber, got.Marker, last.SequenceNumber+2)
	}
	eventually(t, "counters settle", func() bool { return c.b.Stats().PacketsOut == 4 })
}

func TestWriteRTPErrors(t *testing.T) {
	pool := newTestPool(t, 1, 0)
	e := allocate(t, pool)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: []byte{1}}
	if err := e.WriteRTP(pkt); !errors.Is(err, ErrNoRemote) {
		t.Errorf("WriteRTP with no remote: %v, want ErrNoRemote", err)
	}
	if err := e.WriteRTP(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("WriteRTP(nil): %v, want ErrInvalidArgument", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.WriteRTP(pkt); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteRTP after Close: %v, want ErrClosed", err)
	}
}

func TestRTCPIsRelayedUnchanged(t *testing.T) {
	c := newCall(t, 2)
	rr := rtcpReceiverReport(0xAAAA)

	c.phoneA.sendRaw(c.phoneA.rtcp, rtcpAddr(c.a), rr)
	if got, _ := c.phoneB.recvRaw(c.phoneB.rtcp); !bytes.Equal(got, rr) {
		t.Errorf("RTCP on the RTCP port arrived as %x, want %x unchanged", got, rr)
	}

	// rtcp-mux (RFC 5761): RTCP on the RTP port stays on the RTP path and
	// is not mistaken for RTP with payload type 72.
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), rr)
	if got, _ := c.phoneB.recvRaw(c.phoneB.rtp); !bytes.Equal(got, rr) {
		t.Errorf("muxed RTCP arrived as %x, want %x unchanged", got, rr)
	}
	eventually(t, "RTCP counters", func() bool {
		in, out := c.a.Stats(), c.b.Stats()
		return in.RTCPIn == 2 && out.RTCPOut == 2
	})
	if s := c.a.Stats(); s.PacketsIn != 0 || s.Lost != 0 || c.a.LastActivity().IsZero() {
		t.Errorf("a.Stats() = %+v; want RTCP not counted as RTP, but as activity", s)
	}
}

func TestLostCountsSequenceGapsOnReceivedRTP(t *testing.T) {
	c := newCall(t, 2)
	for _, seq := range []uint16{1, 2, 5, 6, 4} { // 3 lost, 4 late
		c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, SSRC: 9}})
		c.phoneB.recv()
	}
	eventually(t, "five packets in", func() bool { return c.a.Stats().PacketsIn == 5 })
	if got := c.a.Stats().Lost; got != 1 {
		t.Errorf("Lost = %d, want 1 (seq 3 never came; 4 came late)", got)
	}
}

func TestRxSequenceLoss(t *testing.T) {
	type pkt struct {
		ssrc uint32
		seq  uint16
	}
	tests := []struct {
		name string
		pkts []pkt
		want int64
	}{
		{name: "in order", pkts: []pkt{{1, 10}, {1, 11}, {1, 12}}, want: 0},
		{name: "gap of two", pkts: []pkt{{1, 10}, {1, 13}}, want: 2},
		{name: "gap across wrap", pkts: []pkt{{1, 65534}, {1, 1}}, want: 2},
		{name: "late packet fills the gap", pkts: []pkt{{1, 10}, {1, 12}, {1, 11}}, want: 0},
		{name: "duplicate", pkts: []pkt{{1, 10}, {1, 10}, {1, 11}}, want: 0},
		{name: "new SSRC restarts", pkts: []pkt{{1, 10}, {2, 500}, {2, 501}}, want: 0},
		{name: "huge jump is a restart", pkts: []pkt{{1, 10}, {1, 20000}, {1, 20001}}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rx rxSequence
			var lost int64
			for _, p := range tt.pkts {
				lost += rx.lost(p.ssrc, p.seq)
			}
			if lost != tt.want {
				t.Errorf("lost = %d, want %d", lost, tt.want)
			}
		})
	}
}

func TestRewriteKeepsOffsetsForReorderedPackets(t *testing.T) {
	var s outStream
	s.init(time.Now())
	src := source{ssrc: 1}
	mk := func(seq uint16, ts uint32) []byte {
		p := make([]byte, 12)
		p[0] = 0x80
		binary.BigEndian.PutUint16(p[2:], seq)
		binary.BigEndian.PutUint32(p[4:], ts)
		return p
	}
	now := time.Now()
	p1, p3, p2 := mk(1, 160), mk(3, 480), mk(2, 320)
	s.rewrite(p1, src, true, now)
	s.rewrite(p3, src, true, now)
	s.rewrite(p2, src, true, now)
	seq := func(p []byte) uint16 { return binary.BigEndian.Uint16(p[2:]) }
	ts := func(p []byte) uint32 { return binary.BigEndian.Uint32(p[4:]) }
	if seq(p2) != seq(p1)+1 || seq(p3) != seq(p1)+2 || ts(p2) != ts(p1)+160 || ts(p3) != ts(p1)+320 {
		t.Errorf("reordered packets out as seq %d,%d,%d ts %d,%d,%d; want the source's spacing kept",
			seq(p1), seq(p2), seq(p3), ts(p1), ts(p2), ts(p3))
	}
	if s.lastSeq != seq(p3) {
		t.Errorf("lastSeq = %d after a late packet, want the highest sent %d", s.lastSeq, seq(p3))
	}
	if p2[1]&markerBit != 0 || p1[1]&markerBit == 0 {
		t.Errorf("marker: first %v, late %v; want only the first", p1[1]&markerBit != 0, p2[1]&markerBit != 0)
	}
}

// DTMF injection relies on this: whoever sends into an endpoint's stream,
// the party receives one sequence, in order, without duplicates or holes.
func TestWriteRTPAndRelayShareOneSequenceSpace(t *testing.T) {
	c := newCall(t, 2)
	const each = 300
	// Credits bound the packets in flight, so that no socket buffer
	// overflows: a packet lost on the way in would be a hole in the relayed
	// source, which the stream keeps, as it should.
	credits := make(chan struct{}, 32)
	for range cap(credits) {
		credits <- struct{}{}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }() // also after a Fatalf
	take := func() bool {
		select {
		case <-credits:
			return true
		case <-stop:
			return false
		}
	}
	wg.Go(func() {
		src := &stream{ssrc: 1}
		for range each {
			if !take() {
				return
			}
			c.phoneA.send(rtpAddr(c.a), src.next())
		}
	})
	wg.Go(func() {
		inj := &stream{ssrc: 2, pt: 101}
		for range each {
			if !take() {
				return
			}
			if err := c.b.WriteRTP(inj.next(1, 2, 3, 4)); err != nil {
				t.Errorf("WriteRTP: %v", err)
				return
			}
		}
	})
	var prev *rtp.Packet
	injected := 0
	for range 2 * each {
		got := c.phoneB.recv()
		credits <- struct{}{}
		if prev != nil && got.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("seq %d arrived after %d: want every packet to follow the one before (no duplicate, hole or reordering)",
				got.SequenceNumber, prev.SequenceNumber)
		}
		if got.PayloadType == 101 {
			injected++
		}
		prev = got
	}
	if injected != each {
		t.Errorf("%d injected packets among %d, want %d", injected, 2*each, each)
	}
}

// A packet the socket refuses gives its sequence number back: the next one
// takes it, and if the refused one began a new source, so does the next,
// marker and all.
func TestFailedSendLeavesNoHoleInTheSequence(t *testing.T) {
	var s outStream
	s.init(time.Now())
	ok := netip.AddrPortFrom(loopback, uint16(newPhone(t).rtp.LocalAddr().(*net.UDPAddr).Port))
	conn, err := listenUDP(loopback, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.close() })
	refused := netip.MustParseAddrPort("[::1]:9") // an IPv6 destination from an IPv4 socket
	pkt := func(seq uint16) []byte {
		p := make([]byte, 12)
		p[0] = 0x80
		binary.BigEndian.PutUint16(p[2:], seq)
		return p
	}
	relayed := pkt(500)
	if err := s.send(conn, ok, relayed, source{ssrc: 9}, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	injected := source{kind: injectedSource, ssrc: 1}
	if err := s.send(conn, refused, pkt(1), injected, false, time.Now()); err == nil {
		t.Fatal("send to an IPv6 address from an IPv4 socket succeeded; the test needs it to fail")
	}
	retry := pkt(1) // the caller reuses the number of the packet that failed
	if err := s.send(conn, ok, retry, injected, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	a, b := binary.BigEndian.Uint16(relayed[2:]), binary.BigEndian.Uint16(retry[2:])
	if b != a+1 || retry[1]&markerBit == 0 {
		t.Errorf("sent seq %d, then (after a refused packet) %d with marker %v; want %d with the marker",
			a, b, retry[1]&markerBit != 0, a+1)
	}
}

// rtcpReceiverReport is a minimal RTCP RR (RFC 3550 §6.4.2) with no
// report blocks, 8 bytes, followed by an empty SDES so that it is a valid
// compound packet of 12 bytes.
func rtcpReceiverReport(ssrc uint32) []byte {
	b := []byte{0x80, 201, 0, 1, 0, 0, 0, 0, 0x80, 202, 0, 0}
	binary.BigEndian.PutUint32(b[4:8], ssrc)
	return b
}

func TestSourceChangeAdvancesTimestampByElapsedTime(t *testing.T) {
	tests := []struct {
		name    string
		rate    uint32 // 0: default
		elapsed time.Duration
		want    uint32
	}{
		{name: "default 8 kHz, 20 ms", elapsed: 20 * time.Millisecond, want: 160},
		{name: "8 kHz, 1.5 s of silence", rate: 8000, elapsed: 1500 * time.Millisecond, want: 12000},
		{name: "Opus 48 kHz, 20 ms", rate: 48000, elapsed: 20 * time.Millisecond, want: 960},
		{name: "clock going backwards counts as no time", elapsed: -time.Second, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newTestPool(t, 1, 0)
			e := allocate(t, pool)
			e.SetClockRate(tt.rate)
			t0 := time.Now()
			pkt := make([]byte, 12)
			pkt[0] = 0x80
			binary.BigEndian.PutUint32(pkt[4:], 1000)
			e.out.rewrite(pkt, source{ssrc: 1}, true, t0)
			before := binary.BigEndian.Uint32(pkt[4:])

			binary.BigEndian.PutUint32(pkt[4:], 424242) // the new source's own clock
			e.out.rewrite(pkt, source{ssrc: 2}, true, t0.Add(tt.elapsed))
			if got := binary.BigEndian.Uint32(pkt[4:]) - before; got != tt.want {
				t.Errorf("timestamp advanced by %d, want %d", got, tt.want)
			}
		})
	}
}
