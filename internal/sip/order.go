package sip

import (
	"time"
)

// In-dialog requests in CSeq order (RFC 3261 12.2.2). sipgo hands each
// request to its own goroutine, so two requests a few microseconds apart
// can reach the leg in either order. A request whose CSeq is ahead of the
// next expected one is held briefly, until the missing one has been
// accepted or orderWait passed; only then is a lower CSeq really stale.

// orderWait is how long a request ahead of its turn waits for the ones
// before it.
const orderWait = 200 * time.Millisecond

// maxHeld bounds the requests of one dialog waiting for their turn; beyond
// it a request is taken at once (and an older one arriving later is
// refused as stale): the network cannot make a dialog hold goroutines
// without bound.
const maxHeld = 8

// dialogOrder is a leg's state for ordering the peer's requests; guarded
// by the leg's mu.
type dialogOrder struct {
	changed chan struct{} // closed (and replaced) when remoteSeq moves
	held    int           // requests waiting for their turn
}

// advance wakes the requests waiting for their turn; called with the leg's
// mu held after remoteSeq changed.
func (o *dialogOrder) advance() {
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
}

func (o *dialogOrder) wait() <-chan struct{} {
	if o.changed == nil {
		o.changed = make(chan struct{})
	}
	return o.changed
}

// awaitTurnLocked holds a request with CSeq seq until the requests before
// it have been accepted, or orderWait passed, or the leg ended. Called and
// returns with l.mu held (it is released while waiting).
func (l *Leg) awaitTurnLocked(seq uint32) {
	if l.remoteSeq == 0 || seq <= l.remoteSeq+1 || l.ord.held >= maxHeld {
		return
	}
	timer := time.NewTimer(orderWait)
	defer timer.Stop()
	l.ord.held++
	defer func() { l.ord.held-- }()
	for l.remoteSeq != 0 && seq > l.remoteSeq+1 && !l.ended {
		ch := l.ord.wait()
		l.mu.Unlock()
		select {
		case <-ch:
			l.mu.Lock()
		case <-timer.C:
			l.mu.Lock()
			return
		}
	}
}
