package loadgen

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// RTP as the generator sends it: PCMU, 20 ms packets (RFC 3551 §4.5.14).
const (
	pcmuPT        = 0
	packetTime    = 20 * time.Millisecond
	samplesPerPkt = 160 // 20 ms at 8000 Hz
	rtpHeaderLen  = 12
	audioLen      = rtpHeaderLen + samplesPerPkt
	maxDatagram   = 1500
	batchSize     = 64
	pacerSlots    = int(packetTime / pacerTick)
	pacerTick     = time.Millisecond
)

// The first bytes of each audio payload; the rest is µ-law silence (0xFF).
//
//	0: magic "cLG1"  4: stream id  8: counter  12: send time (ns, the
//	generator's monotonic clock)
const (
	payloadMagic = 0x634c4731 // "cLG1"
	offMagic     = rtpHeaderLen
	offStream    = rtpHeaderLen + 4
	offCounter   = rtpHeaderLen + 8
	offSent      = rtpHeaderLen + 12
	payloadHead  = 20
)

// epoch is the origin of nanotime.
var epoch = time.Now()

// nanotime is the generator's clock: monotonic nanoseconds since start.
func nanotime() int64 { return int64(time.Since(epoch)) }

// Stream states.
const (
	streamSending uint32 = iota
	streamPaused         // on hold: no packets, keeps its place
	streamStopped        // the pacer drops it
)

// stream is one direction of one call's RTP. The pacer of its sending
// socket owns the fields marked so; the reader of the socket it arrives on
// owns rx.
type stream struct {
	id     uint32
	ssrc   uint32
	dst    atomic.Uint64 // packed IPv4 address and port (packAddr): a re-INVITE moves it
	state  atomic.Uint32
	sender *mediaSocket

	// pacer-owned
	seq     uint16
	ts      uint32
	counter uint32 // audio packets sent
	slot    uint32 // 20 ms slots elapsed since the first packet
	marker  bool
	dtmf    []dtmfStep
	dtmfAt  uint32 // slot at which DTMF starts
	dtmfPos int

	// retired is what the pacer counted when it dropped the stopped
	// stream: audio packets sent, plus one; 0 while it is still paced.
	retired atomic.Uint32

	// reader-owned
	rx seqTracker

	// The resume watch (Generator.WatchResume): resumeFrom is a nanotime;
	// the reader sets resumedAt when the first packet sent at or after it
	// arrives. 0 while unwatched or not yet.
	resumeFrom atomic.Int64
	resumedAt  atomic.Int64
	receiver   atomic.Pointer[mediaSocket] // the far side's socket of the stream's call
}

// packAddr packs an IPv4 address and port into one word, so that the
// pacer reads a stream's destination with one atomic load while the SIP
// reader may move it (RFC 3264 8.3.1: a new address in a re-INVITE's
// offer).
func packAddr(a netip.AddrPort) uint64 {
	ip := a.Addr().As4()
	return uint64(ip[0])<<40 | uint64(ip[1])<<32 | uint64(ip[2])<<24 | uint64(ip[3])<<16 | uint64(a.Port())
}

func unpackAddr(v uint64) netip.AddrPort {
	ip := netip.AddrFrom4([4]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16)})
	return netip.AddrPortFrom(ip, uint16(v))
}

// destination is where the stream's packets go now.
func (s *stream) destination() netip.AddrPort { return unpackAddr(s.dst.Load()) }

// moveTo sends the stream's next packets to a; it reports whether that is
// a new address.
func (s *stream) moveTo(a netip.AddrPort) bool { return s.dst.Swap(packAddr(a)) != packAddr(a) }

// dtmfStep is one 20 ms slot of a stream's DTMF plan: an RFC 4733 packet,
// or audio (the gap between digits).
type dtmfStep struct {
	audio   bool
	marker  bool
	tsBack  uint32 // the event's timestamp is the slot's minus this
	payload [4]byte
}

// dtmfPlan lays out keys as RFC 4733 events at 20 ms packets (§2.5): five
// packets of tone (100 ms), the last with the E bit and sent three times,
// then five slots of audio before the next key.
func dtmfPlan(keys string) []dtmfStep {
	var plan []dtmfStep
	for _, k := range keys {
		code, ok := dtmfCode(k)
		if !ok {
			continue
		}
		for i := range 5 {
			dur := uint16((i + 1) * samplesPerPkt)
			st := dtmfStep{marker: i == 0, tsBack: uint32(i * samplesPerPkt)}
			st.payload = [4]byte{code, 10, byte(dur >> 8), byte(dur)}
			if i == 4 {
				st.payload[1] |= 0x80
				plan = append(plan, st)
				st.tsBack += samplesPerPkt
				plan = append(plan, st)
				st.tsBack += samplesPerPkt
			}
			plan = append(plan, st)
		}
		for range 5 {
			plan = append(plan, dtmfStep{audio: true})
		}
	}
	return plan
}

func dtmfCode(k rune) (uint8, bool) {
	switch {
	case k >= '0' && k <= '9':
		return uint8(k - '0'), true
	case k == '*':
		return 10, true
	case k == '#':
		return 11, true
	case k >= 'A' && k <= 'D':
		return uint8(12 + k - 'A'), true
	}
	return 0, false
}

// streamTable finds a stream by the id in a packet's payload without a
// lock. Ids grow from 1; a slot is reused after tableSize ids, and the
// stored stream's own id tells a stale packet from a current one.
type streamTable struct {
	slots []atomic.Pointer[stream]
	next  atomic.Uint32

	mu  sync.Mutex
	all []*stream // every stream of the run, for the loss breakdown
}

const tableSize = 1 << 18

func newStreamTable() *streamTable {
	return &streamTable{slots: make([]atomic.Pointer[stream], tableSize)}
}

func (t *streamTable) add(s *stream) {
	s.id = t.next.Add(1)
	t.slots[s.id%tableSize].Store(s)
}

func (t *streamTable) remove(s *stream) { t.slots[s.id%tableSize].CompareAndSwap(s, nil) }

func (t *streamTable) lookup(id uint32) *stream {
	if s := t.slots[id%tableSize].Load(); s != nil && s.id == id {
		return s
	}
	return nil
}

// rxCounters are one socket's receive counters; the reader adds to them
// once per batch.
type rxCounters struct {
	packets   atomic.Uint64 // datagrams read
	unique    atomic.Uint64 // generator audio packets received for the first time
	reordered atomic.Uint64 // of those, arrived after a higher counter
	dups      atomic.Uint64 // generator audio packets received again
	stray     atomic.Uint64 // generator audio of no current stream (a call already counted)
	crossed   atomic.Uint64 // audio of a watched stream that arrived at another socket than its call's
	foreign   atomic.Uint64 // RTP the generator did not send (music on hold, comfort noise)
	dtmf      atomic.Uint64 // telephone-event packets
	digits    atomic.Uint64 // telephone-events ended (E bit, once per event)
}

// mediaSocket is one shared RTP socket of a side: many streams are sent
// from it and received on it. A reader goroutine reads batches; a pacer
// goroutine sends every stream's packet in its 1 ms slot of each 20 ms.
type mediaSocket struct {
	conn  *net.UDPConn
	addr  netip.AddrPort
	table *streamTable

	rx     rxCounters
	histMu sync.Mutex   // held by the reader for a batch, so others can read hist
	maxLat atomic.Int64 // highest latency since Progress last took it
	hist   *Histogram   // one-way latency

	sent    atomic.Uint64 // audio packets sent
	sentEv  atomic.Uint64 // telephone-event packets sent
	sendErr atomic.Uint64

	pmu     sync.Mutex
	pending []*stream

	done      chan struct{}
	wg        sync.WaitGroup
	lastEvent map[uint32]uint32 // reader-owned: SSRC -> timestamp of the last ended event
}

func newMediaSocket(ip netip.Addr, table *streamTable) (*mediaSocket, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, err
	}
	_ = setSocketBuffers(c, 8<<20) // best effort: the default is small for bursts
	m := &mediaSocket{
		conn:      c,
		addr:      c.LocalAddr().(*net.UDPAddr).AddrPort(),
		table:     table,
		hist:      NewHistogram(),
		done:      make(chan struct{}),
		lastEvent: map[uint32]uint32{},
	}
	rx, err := newBatchConn(c, batchSize, maxDatagram)
	if err != nil {
		c.Close()
		return nil, err
	}
	tx, err := newBatchConn(c, batchSize, audioLen)
	if err != nil {
		c.Close()
		return nil, err
	}
	m.wg.Add(2)
	go m.read(rx)
	go m.pace(tx)
	return m, nil
}

// close stops the goroutines and closes the socket.
func (m *mediaSocket) close() {
	close(m.done)
	m.conn.Close()
	m.wg.Wait()
}

// start queues s for sending from this socket from the next slot on.
func (m *mediaSocket) start(s *stream) {
	s.sender = m
	m.pmu.Lock()
	m.pending = append(m.pending, s)
	m.pmu.Unlock()
}

// read is the socket's reader goroutine.
func (m *mediaSocket) read(b *batchConn) {
	defer m.wg.Done()
	for {
		n, err := b.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-m.done:
				return
			default:
				continue
			}
		}
		now := nanotime()
		var c batchCount
		m.histMu.Lock()
		for i := range n {
			m.receive(b.bufs[i][:b.lens[i]], now, &c)
		}
		m.histMu.Unlock()
		m.rx.packets.Add(uint64(n))
		c.flush(&m.rx)
		if c.maxLat > m.maxLat.Load() {
			m.maxLat.Store(c.maxLat) // only this goroutine raises it
		}
	}
}

// batchCount accumulates a batch's counters, to touch the shared atomics
// once per batch.
type batchCount struct {
	unique, reordered, dups, stray, crossed, foreign, dtmf, digits uint64
	maxLat                                                         int64
}

func (c *batchCount) flush(rx *rxCounters) {
	add := func(a *atomic.Uint64, v uint64) {
		if v != 0 {
			a.Add(v)
		}
	}
	add(&rx.unique, c.unique)
	add(&rx.reordered, c.reordered)
	add(&rx.dups, c.dups)
	add(&rx.stray, c.stray)
	add(&rx.crossed, c.crossed)
	add(&rx.foreign, c.foreign)
	add(&rx.dtmf, c.dtmf)
	add(&rx.digits, c.digits)
}

// receive accounts for one datagram: the hot path of the reader.
func (m *mediaSocket) receive(p []byte, now int64, c *batchCount) {
	if len(p) < rtpHeaderLen || p[0]>>6 != 2 {
		c.foreign++
		return
	}
	off := rtpHeaderLen + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 && len(p) >= off+4 {
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	if off > len(p) {
		c.foreign++
		return
	}
	payload := p[off:]
	if len(payload) == 4 && p[1]&0x7f != pcmuPT {
		// telephone-event (RFC 4733): count each event once, at its end.
		c.dtmf++
		if payload[1]&0x80 != 0 {
			ssrc := binary.BigEndian.Uint32(p[8:])
			ts := binary.BigEndian.Uint32(p[4:])
			if last, ok := m.lastEvent[ssrc]; !ok || last != ts {
				m.lastEvent[ssrc] = ts
				c.digits++
			}
		}
		return
	}
	if len(payload) < payloadHead || binary.BigEndian.Uint32(payload) != payloadMagic {
		c.foreign++
		return
	}
	s := m.table.lookup(binary.BigEndian.Uint32(payload[4:]))
	if s == nil {
		c.stray++
		return
	}
	switch s.rx.add(binary.BigEndian.Uint32(payload[8:])) {
	case seqDuplicate:
		c.dups++
		return
	case seqReordered:
		c.reordered++
	}
	c.unique++
	sent := int64(binary.BigEndian.Uint64(payload[12:]))
	if w := s.resumeFrom.Load(); w != 0 && sent >= w {
		// Only what reaches the socket of the stream's own call counts: a
		// packet elsewhere took another call's path (a port the target
		// now uses for another call, while the party still sent to it).
		if s.receiver.Load() != m {
			c.crossed++
		} else if s.resumedAt.Load() == 0 {
			s.resumedAt.Store(now)
		}
	}
	lat := now - sent
	m.hist.Record(lat)
	c.maxLat = max(c.maxLat, lat)
}

// pace is the socket's pacer goroutine: every millisecond it sends the
// packets of the streams in that millisecond's slot, so that the streams
// of a socket spread over the 20 ms instead of bursting together.
func (m *mediaSocket) pace(b *batchConn) {
	defer m.wg.Done()
	for i := range b.bufs {
		buf := b.bufs[i][:audioLen]
		for j := rtpHeaderLen + payloadHead; j < audioLen; j++ {
			buf[j] = 0xFF
		}
	}
	var slots [pacerSlots][]*stream
	var audio [batchSize]bool
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		now := uint64(nanotime())
		for i := range n {
			if audio[i] {
				binary.BigEndian.PutUint64(b.bufs[i][offSent:], now)
			}
		}
		var ev, au uint64
		for i := range n {
			if audio[i] {
				au++
			} else {
				ev++
			}
		}
		if _, err := b.write(n); err != nil {
			m.sendErr.Add(1)
		}
		m.sent.Add(au)
		if ev > 0 {
			m.sentEv.Add(ev)
		}
		n = 0
	}
	t0 := nanotime()
	for tick := int64(0); ; tick++ {
		select {
		case <-m.done:
			return
		default:
		}
		if d := t0 + tick*int64(pacerTick) - nanotime(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		k := int(tick % int64(pacerSlots))
		m.pmu.Lock()
		if len(m.pending) > 0 {
			slots[k] = append(slots[k], m.pending...)
			clear(m.pending)
			m.pending = m.pending[:0]
		}
		m.pmu.Unlock()
		list := slots[k]
		j := 0
		for _, s := range list {
			switch s.state.Load() {
			case streamStopped:
				s.retired.Store(s.counter + 1)
				continue
			case streamSending:
				if n == batchSize {
					flush()
				}
				audio[n] = s.next(b.bufs[n])
				b.lens[n] = audioLen
				if !audio[n] {
					b.lens[n] = rtpHeaderLen + 4
				}
				b.dsts[n] = s.destination()
				n++
			case streamPaused:
				s.slot++
			}
			list[j] = s
			j++
		}
		clear(list[j:])
		slots[k] = list[:j]
		flush()
	}
}

// next writes the stream's next packet into buf and reports whether it is
// audio (true) or a telephone-event packet. Pacer only.
func (s *stream) next(buf []byte) bool {
	slot := s.slot
	s.slot++
	ts := s.ts + slot*samplesPerPkt
	pt := byte(pcmuPT)
	var step *dtmfStep
	if s.dtmf != nil && slot >= s.dtmfAt && s.dtmfPos < len(s.dtmf) {
		step = &s.dtmf[s.dtmfPos]
		s.dtmfPos++
		if step.audio {
			step = nil
		}
	}
	marker := s.marker
	s.marker = false
	if step != nil {
		pt = telephoneEventPT
		ts -= step.tsBack
		marker = step.marker
	}
	buf[0] = 0x80
	buf[1] = pt
	if marker {
		buf[1] |= 0x80
	}
	binary.BigEndian.PutUint16(buf[2:], s.seq)
	binary.BigEndian.PutUint32(buf[4:], ts)
	binary.BigEndian.PutUint32(buf[8:], s.ssrc)
	s.seq++
	if step != nil {
		copy(buf[rtpHeaderLen:], step.payload[:])
		return false
	}
	binary.BigEndian.PutUint32(buf[offMagic:], payloadMagic)
	binary.BigEndian.PutUint32(buf[offStream:], s.id)
	binary.BigEndian.PutUint32(buf[offCounter:], s.counter)
	s.counter++
	return true
}

// telephoneEventPT is the payload type the generator offers for RFC 4733.
const telephoneEventPT = 101

// newStream makes a stream to dst with random SSRC, sequence and timestamp
// (RFC 3550 §5.1) and registers it in the table.
func newStream(t *streamTable, dst netip.AddrPort) *stream {
	s := &stream{ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), marker: true}
	s.dst.Store(packAddr(dst))
	t.add(s)
	t.mu.Lock()
	t.all = append(t.all, s)
	t.mu.Unlock()
	return s
}
