package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Fixed RTP header layout (RFC 3550 §5.1).
const (
	rtpHeaderLen  = 12
	rtcpHeaderLen = 8
	rtpVersion    = 2
	markerBit     = 0x80
)

// Connect makes a relay between a and b: RTP and RTCP received on a are sent
// out of b toward b's party, and what b receives goes out of a.
//
// Connecting replaces earlier partners: after Connect(a, c), an endpoint b
// that was relaying into a stops doing so (and likewise for c's former
// partner). The parties do not notice the swap: each endpoint keeps its own
// outgoing stream, which goes on at the next sequence number with the
// marker bit set and a timestamp advanced by the time that passed
// (RFC 3550 §5.1). Connect(a, nil) is a.Disconnect().
func Connect(a, b *Endpoint) {
	if a == nil {
		return
	}
	if b == nil {
		a.Disconnect()
		return
	}
	a.attach(b)
	if b != a {
		b.attach(a)
	}
}

// attach makes e relay what it receives out of to.
func (e *Endpoint) attach(to *Endpoint) {
	if old := e.peer.Swap(to); old != nil && old != to && old != e {
		old.peer.CompareAndSwap(e, nil) // old was relaying into e: not any more
	}
	// e's own stream now carries what the new partner receives: a new
	// source, even if it is the same party with the same SSRC as before
	// (unhold), whose packets dropped meanwhile must not show as a gap.
	e.out.resync()
}

// Disconnect stops relaying what e receives. Packets from e's party are
// still received and counted, then dropped. It does not stop the peer from
// relaying into e; disconnect both for a hold.
func (e *Endpoint) Disconnect() { e.peer.Store(nil) }

// Peer returns the endpoint out of which what e receives is sent, or nil.
func (e *Endpoint) Peer() *Endpoint { return e.peer.Load() }

// SetPayloadMap makes the endpoint send relayed RTP of payload type from
// with payload type to, for payload types that differ between the legs'
// SDPs (telephone-event is the usual one). Payload types are 7 bits; larger
// values are ignored. Packets injected with WriteRTP are not mapped: they
// are written in this leg's own payload types already.
func (e *Endpoint) SetPayloadMap(from, to uint8) {
	if from >= 128 || to >= 128 {
		return
	}
	e.out.mu.Lock()
	e.out.ptMap[from] = to
	e.out.mu.Unlock()
}

// DropPayload makes the endpoint drop relayed RTP of payload type pt
// instead of sending it: telephone-event from a party whose peer did not
// negotiate it must not reach the peer as an unknown payload type (RFC 3264
// §5.1: only the negotiated types may be sent); the session turns those
// events into SIP INFO instead. The packets still reach the sender's event
// tap and forks. ResetPayloadMap undoes it; types above 127 are ignored.
func (e *Endpoint) DropPayload(pt uint8) {
	if pt >= 128 {
		return
	}
	e.out.mu.Lock()
	e.out.ptMap[pt] = ptDrop
	e.out.mu.Unlock()
}

// MuteRelay stops (on) or resumes (off) sending what the peer relays into
// e; packets of callctl's own (WriteRTP, music) still go. While callctl
// plays DTMF events to a party, the other party's audio must not go to it:
// their timestamps would interleave with the events' (RFC 4733 §2.5.1.2).
// Unlike Disconnect it leaves the relay's wiring alone, so a hold or a
// transfer changing it meanwhile is not undone.
func (e *Endpoint) MuteRelay(on bool) { e.muted.Store(on) }

// ResetPayloadMap forgets every SetPayloadMap and DropPayload: payload types
// are sent as received.
func (e *Endpoint) ResetPayloadMap() {
	e.out.mu.Lock()
	e.out.resetPayloadMapLocked()
	e.out.mu.Unlock()
}

// SetClockRate sets the RTP clock rate (Hz) of what the endpoint sends,
// used to advance timestamps across source changes; 0 restores the default
// of 8000 Hz.
func (e *Endpoint) SetClockRate(hz uint32) {
	if hz == 0 {
		hz = defaultClockRate
	}
	e.out.mu.Lock()
	e.out.clockRate = hz
	e.out.mu.Unlock()
}

// WriteRTP sends a packet of callctl's own (DTMF, music on hold) to the
// endpoint's party. It is renumbered into the endpoint's outgoing stream
// like relayed packets: switching between relayed and injected packets, or
// between injected SSRCs, continues the sequence and marks the change.
// The payload type is sent as given.
//
// WriteRTP may be called while the endpoint relays or plays music: each
// packet the endpoint sends is numbered and written under the endpoint's
// own lock, so packets leave in sequence-number order whichever goroutine
// sends them, and switching sources neither repeats nor skips a number.
// Within a run of the caller's packets their own sequence numbers and
// timestamps keep their spacing: number them consecutively, and give the
// next packet the number of one that WriteRTP failed to send (its error
// returns that number to the stream).
func (e *Endpoint) WriteRTP(pkt *rtp.Packet) error {
	if pkt == nil {
		return fmt.Errorf("media: WriteRTP: nil packet: %w", ErrInvalidArgument)
	}
	if e.closed.Load() {
		return fmt.Errorf("media: WriteRTP on port %d: %w", e.port, ErrClosed)
	}
	// Marshalled on the stack: a packet on its way out allocates nothing.
	var space [maxPacket]byte
	n, err := pkt.MarshalTo(space[:])
	if err != nil {
		return fmt.Errorf("media: WriteRTP: marshal (%d bytes at most): %w", maxPacket, err)
	}
	buf := space[:n]
	if len(buf) < rtpHeaderLen {
		return fmt.Errorf("media: WriteRTP: %d-byte packet is shorter than an RTP header: %w", len(buf), ErrInvalidArgument)
	}
	buf[0] = buf[0]&0x3f | rtpVersion<<6
	if err := e.sendOwn(buf, source{kind: injectedSource, ssrc: pkt.SSRC}, time.Now()); err != nil {
		return fmt.Errorf("media: WriteRTP on port %d: %w", e.port, err)
	}
	return nil
}

// sendOwn sends a packet callctl made (WriteRTP, music) in e's stream,
// its payload type unmapped.
func (e *Endpoint) sendOwn(pkt []byte, src source, now time.Time) error {
	dst := e.rtp.remote.Load().addr
	if !dst.IsValid() {
		return ErrNoRemote
	}
	if err := e.out.send(e.rtp.sock, dst, pkt, src, false, now); err != nil {
		if e.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("to %v: %w", dst, err)
	}
	e.outStat.packets.Add(1)
	e.outStat.bytes.Add(uint64(len(pkt)))
	return nil
}

// receiveRTP handles one datagram from the RTP socket: the hot path.
func (e *Endpoint) receiveRTP(pkt []byte, src netip.AddrPort, rx *rxSequence, now time.Time) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	sec := e.srtpIn.Load()
	if isMuxedRTCP(pkt) {
		// RFC 5761 §4: RTCP multiplexed on the RTP port; relay it as is on
		// the RTP path.
		if sec != nil {
			var ok bool
			if pkt, ok = sec.decryptRTCP(pkt); !ok {
				e.srtpDrop()
				return
			}
		}
		if !e.accept(&e.rtp, src, netip.Addr{}, "rtp") {
			return
		}
		e.in.rtcp.Add(1)
		e.in.lastAny.Store(now.UnixNano())
		if to := e.peer.Load(); to == nil || !to.sendRaw(&to.rtp, pkt) {
			e.in.dropped.Add(1)
		}
		return
	}
	if len(pkt) < rtpHeaderLen || pkt[0]>>6 != rtpVersion {
		e.in.dropped.Add(1)
		return
	}
	if sec != nil {
		// Authenticated before latching: a forged packet must not move
		// the latch (RFC 3711 §3.3 steps 4-5 before anything else).
		var ok bool
		if pkt, ok = sec.decryptRTP(pkt); !ok {
			e.srtpDrop()
			return
		}
	}
	if !e.accept(&e.rtp, src, netip.Addr{}, "rtp") {
		return
	}
	ns := now.UnixNano()
	e.in.packets.Add(1)
	e.in.bytes.Add(uint64(len(pkt)))
	e.in.lastRTP.Store(ns)
	e.in.lastAny.Store(ns)
	ssrc := binary.BigEndian.Uint32(pkt[8:12])
	seq := binary.BigEndian.Uint16(pkt[2:4])
	if d := rx.lost(ssrc, seq); d != 0 {
		e.in.lost.Add(d)
	}
	ts := binary.BigEndian.Uint32(pkt[4:8])
	b1 := pkt[1]
	pt := b1 & 0x7f
	to := e.peer.Load()
	if to == nil || !to.sendRTP(pkt, source{from: e, ssrc: ssrc}, now) {
		e.in.dropped.Add(1)
	}
	// The tap and the forks run after the relay so that they delay no
	// audio. Relaying rewrote the header in place, hence b1, seq, ssrc and
	// ts read before; the payload and the first octet are as received.
	if tap := e.tap.Load(); tap != nil && pt == tap.payloadType {
		if payload, ok := rtpPayload(pkt); ok {
			tap.f(ssrc, ts, payload)
		}
	}
	if forks := e.forks.Load(); forks != nil {
		e.fork(forks, pkt, b1, seq, ts, ssrc, now)
	}
}

// SetEventTap calls f for every RTP packet of payload type payloadType
// received from the party (its telephone-event type, RFC 4733), in addition
// to relaying the packet as usual: to see DTMF the party sends. f gets the
// SSRC and timestamp as the party sent them and the payload without header,
// CSRCs, extension or padding (RFC 3550 §5.1, §5.3.1).
//
// f runs on the poller goroutine reading the endpoint, after the packet has been
// relayed, so it must return quickly: the next packet waits for it. The
// payload is valid only during the call; f must copy what it keeps and not
// write to it. Packets the endpoint refuses (malformed, from a source other
// than the latched one) are not tapped; packets received while the endpoint
// is disconnected or its peer plays music are.
//
// A new call replaces the previous tap. A payloadType outside 0..127 (such
// as -1) or a nil f removes it.
func (e *Endpoint) SetEventTap(payloadType int, f func(ssrc, timestamp uint32, payload []byte)) {
	if payloadType < 0 || payloadType > 127 || f == nil {
		e.tap.Store(nil)
		return
	}
	e.tap.Store(&eventTap{payloadType: uint8(payloadType), f: f})
}

// eventTap is what SetEventTap installed; it is replaced, never changed.
type eventTap struct {
	payloadType uint8
	f           func(ssrc, timestamp uint32, payload []byte)
}

// rtpPayload returns the payload of a valid RTP packet of at least a fixed
// header: what follows the CSRC list and the header extension, without the
// padding (RFC 3550 §5.1, §5.3.1). It reports false if the lengths in the
// header do not fit the packet.
func rtpPayload(pkt []byte) ([]byte, bool) {
	n := rtpHeaderLen + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < n+4 {
			return nil, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(pkt[n+2:n+4]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 {
		// The last octet counts the padding, itself included.
		if end <= n {
			return nil, false
		}
		pad := int(pkt[end-1])
		if pad == 0 || pad > end-n {
			return nil, false
		}
		end -= pad
	}
	if n > end {
		return nil, false
	}
	return pkt[n:end], true
}

// receiveRTCP handles one datagram from the RTCP socket.
func (e *Endpoint) receiveRTCP(pkt []byte, src netip.AddrPort, now time.Time) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if len(pkt) < rtcpHeaderLen || pkt[0]>>6 != rtpVersion {
		e.in.dropped.Add(1)
		return
	}
	if sec := e.srtpIn.Load(); sec != nil {
		var ok bool
		if pkt, ok = sec.decryptRTCP(pkt); !ok {
			e.srtpDrop()
			return
		}
	}
	// The party's RTCP comes from where its RTP does (RFC 3550 §11).
	var partyIP netip.Addr
	if r := e.rtp.remote.Load(); r.latched {
		partyIP = r.addr.Addr()
	}
	if !e.accept(&e.rtcp, src, partyIP, "rtcp") {
		return
	}
	e.in.rtcp.Add(1)
	e.in.lastAny.Store(now.UnixNano())
	if to := e.peer.Load(); to == nil || !to.sendRaw(&to.rtcp, pkt) {
		e.in.dropped.Add(1)
	}
}

// sendRTP renumbers a relayed packet into e's stream and sends it to e's
// party. It reports whether the packet was sent: not while e plays music
// (hold stops the relay between the parties), nor when e's party has no
// address yet.
func (e *Endpoint) sendRTP(pkt []byte, src source, now time.Time) bool {
	if e.playing.Load() || e.muted.Load() {
		return false
	}
	dst := e.rtp.remote.Load().addr
	if !dst.IsValid() {
		return false // do not spend a sequence number on a packet never sent
	}
	if e.out.send(e.rtp.sock, dst, pkt, src, true, now) != nil {
		return false
	}
	e.outStat.packets.Add(1)
	e.outStat.bytes.Add(uint64(len(pkt)))
	return true
}

// sendRaw sends a relayed RTCP packet unchanged out of one of e's paths;
// not while e plays music, as the other party's reports do not describe
// what e's party then receives.
func (e *Endpoint) sendRaw(p *path, pkt []byte) bool {
	if e.playing.Load() {
		return false
	}
	if err := e.writeRTCP(p, pkt); err != nil {
		return false
	}
	e.outStat.rtcp.Add(1)
	return true
}

// isMuxedRTCP recognises RTCP on the RTP port: packet types 200-204 (SR, RR,
// SDES, BYE, APP) occupy the byte where RTP has marker and payload type, and
// collide with no RTP payload type in use (RFC 5761 §4).
func isMuxedRTCP(pkt []byte) bool {
	return len(pkt) >= rtcpHeaderLen && pkt[0]>>6 == rtpVersion && pkt[1] >= 200 && pkt[1] <= 204
}

// source identifies what feeds an endpoint's outgoing stream; a change of
// source is a discontinuity to hide from the receiver.
type source struct {
	from *Endpoint // relaying endpoint; nil for callctl's own packets
	kind sourceKind
	ssrc uint32 // the source's SSRC; for music, the player's number
}

type sourceKind uint8

const (
	relayedSource  sourceKind = iota // from a peer endpoint, which is never nil
	injectedSource                   // WriteRTP
	musicSource                      // StartMusic
)

// outStream is the state of the RTP stream an endpoint sends: callctl's own
// SSRC and the offsets that map the current source's sequence numbers and
// timestamps into it (RFC 3550 §5.1, §8). Its mutex is per endpoint: only
// the peer's reader, WriteRTP and the endpoint's music contend for it.
type outStream struct {
	mu        sync.Mutex
	ssrc      uint32
	clockRate uint32
	ptMap     [128]uint8 // relayed payload type -> sent payload type, or ptDrop
	// srtp encrypts what is sent when the party speaks SRTP; nil for
	// plain RTP (srtp.go).
	srtp *srtpSender

	streamPos
}

// streamPos is where an outgoing stream stands: saved before a packet is
// sent and restored if the socket refuses it.
type streamPos struct {
	src       source // zero value matches no real source
	seqOffset uint16
	tsOffset  uint32
	lastSeq   uint16    // highest sequence number sent
	lastTS    uint32    // timestamp sent with lastSeq
	lastSent  time.Time // when the last packet was sent (monotonic clock)
}

func (s *outStream) init(now time.Time) {
	s.ssrc = newSSRC()
	s.clockRate = defaultClockRate
	s.resetPayloadMapLocked()
	// Random initial sequence number and timestamp (RFC 3550 §5.1): the
	// first packet is handled as a source change from this point.
	s.lastSeq = uint16(newSSRC())
	s.lastTS = newSSRC()
	s.lastSent = now
}

// ptDrop in ptMap marks a payload type not to relay (DropPayload).
const ptDrop = 0xff

// errDropped is send's answer for a packet of a dropped payload type.
var errDropped = errors.New("media: payload type not relayed to this party")

func (s *outStream) resetPayloadMapLocked() {
	for i := range s.ptMap {
		s.ptMap[i] = uint8(i)
	}
}

// resync makes the next packet start a new source segment.
func (s *outStream) resync() {
	s.mu.Lock()
	s.src = source{}
	s.mu.Unlock()
}

// send renumbers pkt into the stream (see rewrite) and writes it to dst.
// The lock is held across the write so that packets leave in the order of
// their sequence numbers whichever goroutine sends them (the peer's reader,
// WriteRTP, music). A packet the socket refuses gives its place back, so
// the stream has no gap where nothing was sent.
func (s *outStream) send(sock *udpSocket, dst netip.AddrPort, pkt []byte, src source, mapPT bool, now time.Time) error {
	s.mu.Lock()
	if mapPT && s.ptMap[pkt[1]&0x7f] == ptDrop {
		s.mu.Unlock()
		return errDropped
	}
	pos := s.streamPos
	s.rewriteLocked(pkt, src, mapPT, now)
	out, err := s.sealRTP(pkt)
	if err == nil {
		err = sock.writeTo(out, dst)
	}
	if err != nil {
		s.streamPos = pos
	}
	s.mu.Unlock()
	return err
}

// rewrite is rewriteLocked under the lock, for a packet not sent here.
func (s *outStream) rewrite(pkt []byte, src source, mapPT bool, now time.Time) {
	s.mu.Lock()
	s.rewriteLocked(pkt, src, mapPT, now)
	s.mu.Unlock()
}

// rewriteLocked turns a packet of src into the next packet of this stream,
// in place: SSRC, sequence number, timestamp, marker and (if mapPT) payload
// type. On a source change the offsets are recomputed so the sequence
// continues at last+1 and the timestamp advances by the wall-clock time
// since the last packet sent, and the marker bit flags the discontinuity.
func (s *outStream) rewriteLocked(pkt []byte, src source, mapPT bool, now time.Time) {
	inSeq := binary.BigEndian.Uint16(pkt[2:4])
	inTS := binary.BigEndian.Uint32(pkt[4:8])

	changed := src != s.src
	if changed {
		elapsed := now.Sub(s.lastSent)
		if elapsed < 0 {
			elapsed = 0
		}
		advance := uint32(uint64(elapsed) * uint64(s.clockRate) / uint64(time.Second))
		s.seqOffset = s.lastSeq + 1 - inSeq
		s.tsOffset = s.lastTS + advance - inTS
		s.src = src
	}
	seq := inSeq + s.seqOffset
	ts := inTS + s.tsOffset
	if changed || int16(seq-s.lastSeq) > 0 {
		s.lastSeq, s.lastTS = seq, ts
	}
	s.lastSent = now
	b1 := pkt[1]
	if mapPT && s.ptMap[b1&0x7f] != ptDrop {
		b1 = b1&markerBit | s.ptMap[b1&0x7f]
	}
	if changed {
		b1 |= markerBit
	}
	pkt[1] = b1
	binary.BigEndian.PutUint16(pkt[2:4], seq)
	binary.BigEndian.PutUint32(pkt[4:8], ts)
	binary.BigEndian.PutUint32(pkt[8:12], s.ssrc)
}
