package session

import (
	"sync"

	"github.com/callctl/callctl/internal/sip"
)

// inbox is an unbounded queue: SIP goroutines push without ever blocking
// (they may hold a leg's lock), the session goroutine takes.
type inbox struct {
	mu     sync.Mutex
	items  []any
	closed bool
	signal chan struct{}
}

func newInbox() inbox { return inbox{signal: make(chan struct{}, 1)} }

// push queues v; it reports false (and refuses v) once the queue is closed.
func (q *inbox) push(v any) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		refuseLate(v)
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return true
}

func (q *inbox) take() []any {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// close stops the queue; requests still in it, or arriving later, are
// answered 481: their session is gone.
func (q *inbox) close() {
	q.mu.Lock()
	q.closed = true
	items := q.items
	q.items = nil
	q.mu.Unlock()
	for _, v := range items {
		refuseLate(v)
	}
}

func refuseLate(v any) {
	switch r := v.(type) {
	case *sip.Request:
		r.Respond(481, "Call/Transaction Does Not Exist", nil)
	case *joinHandoff:
		// A party handed over by a joined call whose new session is gone.
		r.r.leg.SetSink(nil)
		r.r.leg.Bye(`SIP;cause=480;text="transfer abandoned"`)
		r.r.ep.Close()
	case *opRequest:
		if r.endedOK {
			r.reply <- nil
		} else {
			r.reply <- &OpError{Code: CodeWrongState, Op: r.name, Msg: "the session has ended"}
		}
	}
}
