package session

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Party is one side of a call.
type Party struct {
	Number      string `json:"number"`
	DisplayName string `json:"displayName,omitempty"`
	LegID       string `json:"legId,omitempty"`
	CallID      string `json:"callId,omitempty"`
}

// LegStats are one leg's media counters, as callctl saw them.
type LegStats struct {
	Role       string `json:"role"` // "caller" or "callee"
	PacketsIn  uint64 `json:"packetsIn"`
	PacketsOut uint64 `json:"packetsOut"`
	BytesIn    uint64 `json:"bytesIn"`
	BytesOut   uint64 `json:"bytesOut"`
	Lost       uint64 `json:"lost"`
}

// Snapshot is a session as readers see it: a copy, safe to keep.
type Snapshot struct {
	ID         string     `json:"id"`
	State      State      `json:"state"`
	Caller     Party      `json:"caller"`
	Callee     Party      `json:"callee"`
	Dialled    string     `json:"dialled"`
	Start      time.Time  `json:"start"`
	Answer     time.Time  `json:"answer,omitzero"`
	End        time.Time  `json:"end,omitzero"`
	StateSince time.Time  `json:"stateSince"`
	EndReason  string     `json:"endReason,omitempty"`
	Legs       []LegStats `json:"legs,omitempty"`
	// Transfer is set while a transfer or forward is under way, and kept
	// with its last news once it ended.
	Transfer *TransferInfo `json:"transfer,omitempty"`
	// Listeners is the number of supervisors listening in now.
	Listeners int `json:"listeners"`
	// Node is the node that carries the call, when it is not the one
	// answering (a cluster's other nodes; docs/cluster.md).
	Node string `json:"node,omitempty"`
}

// EventType says what an Event reports.
type EventType string

const (
	// EventStateChanged: the session moved from Previous to State.
	EventStateChanged EventType = "STATE_CHANGED"
	// EventOperation: an operation finished (Result "ok" or "error") or
	// made progress ("progress"); State is the state at that moment.
	EventOperation EventType = "OPERATION"
	// EventDTMFReceived: a party sent a digit.
	EventDTMFReceived EventType = "DTMF_RECEIVED"
	// EventListenStarted and EventListenStopped: a listener joined or left.
	EventListenStarted EventType = "LISTEN_STARTED"
	EventListenStopped EventType = "LISTEN_STOPPED"
	// EventRecovered: a call this process re-adopted from the live-call
	// store (after a restart) carries media again through this process.
	EventRecovered EventType = "RECOVERED"
)

// OperationInfo describes an operation event.
type OperationInfo struct {
	Name   string            `json:"name"`
	Args   map[string]string `json:"args,omitempty"`
	Result string            `json:"result"`
	Error  string            `json:"error,omitempty"`
}

// Event is one state change. Seq only grows, across all sessions.
type Event struct {
	Seq       uint64    `json:"seq"`
	Type      EventType `json:"type"`
	SessionID string    `json:"sessionId"`
	State     State     `json:"state"`
	Previous  State     `json:"previous,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Time      time.Time `json:"time"`
	Session   Snapshot  `json:"session"`

	Operation *OperationInfo `json:"operation,omitempty"`
	DTMF      *DTMFInfo      `json:"dtmf,omitempty"`
	Listen    *ListenInfo    `json:"listen,omitempty"`
	// Node is the node that owns the session, for an event that node
	// told this one (empty for this node's own).
	Node string `json:"node,omitempty"`
}

// Registry holds the live sessions and, for Retention, the ended ones.
type Registry struct {
	retention time.Duration
	now       func() time.Time

	mu        sync.RWMutex
	live      map[string]*Session
	ended     map[string]Snapshot
	closed    map[string]Snapshot      // released by close (End is when), for idempotent repeats
	remote    map[string]remoteSession // other nodes' sessions (remote.go)
	lastPrune time.Time

	busMu sync.Mutex
	seq   uint64
	subs  map[*Subscription]struct{}
}

// NewRegistry makes a registry keeping ended sessions readable for retention.
func NewRegistry(retention time.Duration) *Registry {
	return &Registry{
		retention: retention,
		now:       time.Now,
		live:      make(map[string]*Session),
		ended:     make(map[string]Snapshot),
		closed:    make(map[string]Snapshot),
		subs:      make(map[*Subscription]struct{}),
	}
}

func (r *Registry) add(s *Session) {
	r.mu.Lock()
	r.live[s.id] = s
	delete(r.remote, s.id) // re-adopted from another node
	r.mu.Unlock()
}

// retire moves a session from live to ended.
func (r *Registry) retire(s *Session, snap Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, s.id)
	if snap.State == Closed {
		r.closed[s.id] = snap
	} else if r.retention > 0 {
		r.ended[s.id] = snap
	}
	r.pruneLocked()
}

func (r *Registry) pruneLocked() {
	now := r.now()
	// A scan of the retained sessions at most every second, not at every
	// call's end: at hundreds of calls a second that scan was a tenth of
	// the work per call.
	if now.Sub(r.lastPrune) < time.Second && now.After(r.lastPrune) {
		return
	}
	r.lastPrune = now
	cut := now.Add(-r.retention)
	for id, snap := range r.ended {
		if snap.End.Before(cut) {
			delete(r.ended, id)
		}
	}
	for id, snap := range r.closed {
		if snap.End.Before(cut) {
			delete(r.closed, id)
		}
	}
}

// handedOff forgets a session whose call another node carries now.
func (r *Registry) handedOff(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[s.id] == s {
		delete(r.live, s.id)
	}
}

// liveSession returns the live session with id, or nil.
func (r *Registry) liveSession(id string) *Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.live[id]
}

// forget releases a retained ended session (close on an ended session): it
// becomes CLOSED and unreadable.
func (r *Registry) forget(id string) {
	r.mu.Lock()
	snap, ok := r.ended[id]
	delete(r.ended, id)
	prev := snap.State
	if ok {
		snap.State = Closed
		r.closed[id] = snap
	}
	r.mu.Unlock()
	if ok {
		r.publish(Event{Type: EventStateChanged, SessionID: id, State: Closed, Previous: prev, Reason: "closed by a client", Time: r.now(), Session: snap})
	}
}

// Released returns the last snapshot of a session that close released
// recently (for answering the close itself).
func (r *Registry) Released(id string) (Snapshot, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	snap, ok := r.closed[id]
	return snap, ok
}

// wasClosed reports whether id was released by close recently.
func (r *Registry) wasClosed(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.closed[id]
	return ok
}

// Get returns a session by id, live or recently ended.
func (r *Registry) Get(id string) (Snapshot, bool) {
	r.mu.RLock()
	s, ok := r.live[id]
	snap, endedOK := r.ended[id]
	r.mu.RUnlock()
	if ok {
		return s.Snapshot(), true
	}
	if endedOK && !snap.End.Before(r.now().Add(-r.retention)) {
		return snap, true
	}
	return Snapshot{}, false
}

// List returns every live and retained session, oldest first.
func (r *Registry) List() []Snapshot {
	r.mu.Lock()
	r.pruneLocked()
	live := make([]*Session, 0, len(r.live))
	for _, s := range r.live {
		live = append(live, s)
	}
	out := make([]Snapshot, 0, len(r.live)+len(r.ended))
	for _, snap := range r.ended {
		out = append(out, snap)
	}
	r.mu.Unlock()
	for _, s := range live {
		out = append(out, s.Snapshot())
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return a.Start.Compare(b.Start) })
	return out
}

// ByNumber returns the sessions whose caller, callee or dialled number is n.
func (r *Registry) ByNumber(n string) []Snapshot {
	var out []Snapshot
	for _, s := range r.List() {
		if s.Caller.Number == n || s.Callee.Number == n || s.Dialled == n {
			out = append(out, s)
		}
	}
	return out
}

// LiveCount is the number of sessions not yet ended.
func (r *Registry) LiveCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.live)
}

func (r *Registry) liveSessions() []*Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Session, 0, len(r.live))
	for _, s := range r.live {
		out = append(out, s)
	}
	return out
}

// Subscription receives events until Close, or until it falls behind by more
// than its buffer, when it is dropped: C is closed and Dropped reports true.
type Subscription struct {
	r       *Registry
	ch      chan Event
	dropped atomic.Bool
	closed  bool // guarded by r.busMu
}

// Subscribe returns a subscription with room for buffer pending events.
func (r *Registry) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	s := &Subscription{r: r, ch: make(chan Event, buffer)}
	r.busMu.Lock()
	r.subs[s] = struct{}{}
	r.busMu.Unlock()
	return s
}

// C delivers the events.
func (s *Subscription) C() <-chan Event { return s.ch }

// Dropped reports whether the subscription was cut off for being slow.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	s.r.busMu.Lock()
	defer s.r.busMu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.r.subs, s)
	close(s.ch)
}

// publish numbers an event and hands it to every subscriber without ever
// waiting: a subscriber whose buffer is full is dropped.
func (r *Registry) publish(ev Event) {
	r.busMu.Lock()
	defer r.busMu.Unlock()
	r.seq++
	ev.Seq = r.seq
	for s := range r.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped.Store(true)
			s.closeLocked()
		}
	}
}
