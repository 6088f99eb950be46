package media

import (
	"fmt"
	"slices"
	"time"
)

// ForkedPacket is one RTP packet a party sent, as a [Fork] sees it: the
// header fields as the party sent them (before the relay renumbered the
// packet into the peer's stream) and the payload.
type ForkedPacket struct {
	PayloadType    uint8
	Marker         bool
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32
	// Payload is what follows the header, CSRCs and extension, without
	// padding (RFC 3550 §5.1, §5.3.1). It aliases the endpoint's read
	// buffer: valid only during the call, and not to be written.
	Payload []byte
	// Received is when the endpoint read the packet.
	Received time.Time
}

// Fork receives a copy of the RTP a party sends; see [Endpoint.AddFork].
type Fork func(ForkedPacket)

// forkEntry gives each added fork an identity for its removal.
type forkEntry struct{ f Fork }

// forkList is an immutable set of forks: adding or removing one stores a new
// list, so the reader walks its snapshot without a lock.
type forkList struct{ entries []*forkEntry }

// AddFork calls f for every valid RTP packet received from the party (what
// the party sends), after the packet has been relayed: to let others hear
// the call (listen-in) without touching the relay. Every payload type is
// forked, telephone-event and comfort noise included; the fork picks what
// it wants by PayloadType. RTCP is not forked.
//
// Forking does not depend on the relay: packets received while the endpoint
// is disconnected (hold), while its peer plays music, or with nowhere to go
// are forked too. Packets the endpoint refuses (malformed, or from a source
// other than the latched one) are not.
//
// f runs on the poller goroutine reading the endpoint and must return quickly and
// allocate nothing if the relay is to stay lean: hand the packet to a
// goroutine of its own (copying the payload) rather than doing I/O. Forks
// are called in the order they were added.
//
// remove uninstalls f; it is idempotent and safe to call after Close.
// Once it has returned, f is not called again except by a call already
// running. AddFork on a closed endpoint fails with ErrClosed, and Close
// removes every fork: so a fork added before a Close is either running or
// gone once Close has returned.
func (e *Endpoint) AddFork(f Fork) (remove func(), err error) {
	if f == nil {
		return nil, fmt.Errorf("media: AddFork: nil fork: %w", ErrInvalidArgument)
	}
	entry := &forkEntry{f: f}
	e.forkMu.Lock()
	defer e.forkMu.Unlock()
	if e.closed.Load() {
		return nil, fmt.Errorf("media: AddFork on port %d: %w", e.port, ErrClosed)
	}
	var entries []*forkEntry
	if l := e.forks.Load(); l != nil {
		entries = slices.Clip(l.entries)
	}
	e.forks.Store(&forkList{entries: append(entries, entry)})
	return func() { e.removeFork(entry) }, nil
}

func (e *Endpoint) removeFork(entry *forkEntry) {
	e.forkMu.Lock()
	defer e.forkMu.Unlock()
	l := e.forks.Load()
	if l == nil {
		return
	}
	i := slices.Index(l.entries, entry)
	if i < 0 {
		return
	}
	if len(l.entries) == 1 {
		e.forks.Store(nil)
		return
	}
	e.forks.Store(&forkList{entries: slices.Delete(slices.Clone(l.entries), i, i+1)})
}

// Forks returns how many forks are installed.
func (e *Endpoint) Forks() int {
	if l := e.forks.Load(); l != nil {
		return len(l.entries)
	}
	return 0
}

// clearForks removes every fork; Close calls it after marking the endpoint
// closed, so that no AddFork can slip in afterwards.
func (e *Endpoint) clearForks() {
	e.forkMu.Lock()
	e.forks.Store(nil)
	e.forkMu.Unlock()
}

// fork hands a received packet to the installed forks. The relay has
// rewritten pkt's header since it was received, except the first octet, so
// the caller passes the fields it read before relaying.
func (e *Endpoint) fork(l *forkList, pkt []byte, b1 byte, seq uint16, ts, ssrc uint32, now time.Time) {
	payload, ok := rtpPayload(pkt)
	if !ok {
		return
	}
	p := ForkedPacket{
		PayloadType:    b1 & 0x7f,
		Marker:         b1&markerBit != 0,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           ssrc,
		Payload:        payload,
		Received:       now,
	}
	for _, entry := range l.entries {
		entry.f(p)
	}
}
