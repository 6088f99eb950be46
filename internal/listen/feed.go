package listen

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// comfortNoisePT is the static payload type of comfort noise (RFC 3389 §4);
// pion would send it to the browser labelled as the track's codec.
const comfortNoisePT = 13

// maxPayload is the largest payload a feed carries: an Ethernet MTU less
// the RTP header. Larger packets do not arrive at a media.Endpoint.
const maxPayload = 1500 - 12

// queueLen bounds how many packets wait for a feed's writer: 640 ms of
// 20 ms packets. The fork drops what does not fit rather than wait.
const queueLen = 32

// slot carries one packet from the fork to the writer.
type slot struct {
	gen     uint32
	ssrc    uint32
	seq     uint16
	ts      uint32
	marker  bool
	skipped uint16 // packets of the source filtered out since the last slot
	at      time.Time
	n       int
	payload [maxPayload]byte
}

// feed is one of a listener's tracks (caller or callee) and what feeds it:
// a fork on the party's media endpoint copies each audio packet into a slot
// and queues it; the feed's writer goroutine renumbers it into the track's
// own stream and writes it to the PeerConnection. So the relay pays one
// copy and one non-blocking channel send per listener, and never waits for
// pion.
type feed struct {
	party string // "caller" or "callee"
	track *webrtc.TrackLocalStaticRTP
	codec string // the track's codec, which a new source must match

	free  chan *slot // empty slots
	queue chan *slot // filled slots, in arrival order

	// live is set while the PeerConnection is connected: before, pion
	// could not send; after, nobody listens.
	live *atomic.Bool

	mu     sync.Mutex // guards binding changes (attach, detach, close)
	gen    uint32     // numbers bindings so the writer sees a new source
	remove func()     // removes the current fork; nil when detached
	closed bool       // the listener ended: no more forks

	dropped atomic.Uint64 // packets the queue had no room for
	written atomic.Uint64 // packets handed to pion
}

func newFeed(party string, track *webrtc.TrackLocalStaticRTP, codec string, live *atomic.Bool) *feed {
	f := &feed{party: party, track: track, codec: codec, live: live,
		free: make(chan *slot, queueLen), queue: make(chan *slot, queueLen)}
	for range queueLen {
		f.free <- &slot{}
	}
	return f
}

// binding is what one fork knows of its source.
type binding struct {
	f      *feed
	gen    uint32
	pt     uint8
	events int // the party's telephone-event payload type, or -1
	// skipped counts packets filtered out since the last one queued, so
	// that they leave no gap in the track's sequence numbers (a gap would
	// read as loss). Only the endpoint's reader goroutine touches it.
	skipped uint16
}

// attach makes the feed carry the audio t's endpoint receives, in place of
// whatever it carried before (a transfer gives a party a new endpoint). The
// new fork is installed before the old one is removed, so no packet is lost
// to the swap; the writer starts a new segment at the new source.
func (f *feed) attach(t Track) error {
	if spec, err := lookupCodec(t.Codec); err != nil {
		return fmt.Errorf("listen: %s track: %w", f.party, err)
	} else if spec.name != f.codec {
		return fmt.Errorf("listen: %s track carries %s; a source of %s needs a new listener: %w",
			f.party, f.codec, spec.name, ErrInvalidArgument)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFeedClosed
	}
	f.gen++
	b := &binding{f: f, gen: f.gen, pt: t.PayloadType, events: t.TelephoneEvent}
	remove, err := t.Endpoint.AddFork(b.fork)
	if err != nil {
		return fmt.Errorf("listen: %s endpoint: %w", f.party, err)
	}
	if f.remove != nil {
		f.remove()
	}
	f.remove = remove
	return nil
}

// detach removes the fork; the writer gets nothing more until attach.
func (f *feed) detach() {
	f.mu.Lock()
	f.detachLocked()
	f.mu.Unlock()
}

// close removes the fork for good: attach fails from now on.
func (f *feed) close() {
	f.mu.Lock()
	f.closed = true
	f.detachLocked()
	f.mu.Unlock()
}

func (f *feed) detachLocked() {
	if f.remove != nil {
		f.remove()
		f.remove = nil
	}
}

// errFeedClosed: attach after the listener ended.
var errFeedClosed = errors.New("listener ended")

// fork runs on the endpoint's reader goroutine for every packet the party
// sends: it keeps the call's audio codec only (no telephone-event, comfort
// noise or other payload types, which the browser would take for audio)
// and queues a copy without blocking and without allocating.
func (b *binding) fork(p media.ForkedPacket) {
	f := b.f
	if !f.live.Load() {
		return
	}
	if p.PayloadType != b.pt || p.PayloadType == comfortNoisePT || int(p.PayloadType) == b.events ||
		len(p.Payload) == 0 || len(p.Payload) > maxPayload {
		b.skipped++
		return
	}
	var s *slot
	select {
	case s = <-f.free:
	default:
		f.dropped.Add(1) // a gap the browser may conceal
		return
	}
	s.gen, s.ssrc, s.seq, s.ts, s.marker, s.at = b.gen, p.SSRC, p.SequenceNumber, p.Timestamp, p.Marker, p.Received
	s.skipped, b.skipped = b.skipped, 0
	s.n = copy(s.payload[:], p.Payload)
	f.queue <- s // never blocks: there are as many slots as queue places
}

// write renumbers queued packets into the track until done is closed.
func (f *feed) write(done <-chan struct{}, clock uint32) {
	r := newRenumber(clock)
	var pkt rtp.Packet
	pkt.Version = 2
	for {
		select {
		case <-done:
			return
		case s := <-f.queue:
			if seq, ts, marker, ok := r.next(s.gen, s.ssrc, s.seq, s.ts, s.skipped, s.at, s.marker); ok {
				// pion sets the SSRC and payload type of the negotiated
				// binding, and copies the packet before it returns.
				pkt.SequenceNumber, pkt.Timestamp, pkt.Marker = seq, ts, marker
				pkt.Payload = s.payload[:s.n]
				if f.track.WriteRTP(&pkt) == nil {
					f.written.Add(1)
				}
			}
			f.free <- s
		}
	}
}
