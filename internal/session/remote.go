package session

import (
	"context"
	"fmt"
	"slices"
)

// The sessions of other nodes (docs/cluster.md, "Several nodes"): a
// registry also keeps the latest snapshot of each session another node
// owns, from that node's events, so that every node's API lists every
// call; an operation on one of them goes to its owner.

// remoteSession is another node's session as this node last heard of it.
type remoteSession struct {
	snap Snapshot
	node string
}

// Remote takes an event of another node's session: its snapshot is kept
// (until it ends and its retention passes) and the event goes to this
// node's subscribers (its own sequence number, Node naming the owner).
func (r *Registry) Remote(node string, ev Event) {
	r.mu.Lock()
	if _, mine := r.live[ev.SessionID]; mine {
		r.mu.Unlock()
		return // re-adopted here since: this node tells its own news
	}
	if r.remote == nil {
		r.remote = map[string]remoteSession{}
	}
	switch {
	case ev.State == Closed:
		delete(r.remote, ev.SessionID)
	default:
		r.remote[ev.SessionID] = remoteSession{snap: ev.Session, node: node}
	}
	r.pruneRemoteLocked()
	r.mu.Unlock()
	ev.Node = node
	r.publish(ev)
}

// pruneRemoteLocked drops other nodes' ended sessions past retention.
func (r *Registry) pruneRemoteLocked() {
	cut := r.now().Add(-r.retention)
	for id, rs := range r.remote {
		if rs.snap.State.Ended() && rs.snap.End.Before(cut) {
			delete(r.remote, id)
		}
	}
}

// Known records another node's session without an event (what a node
// learns of the others' calls when it starts).
func (r *Registry) Known(node string, snap Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, mine := r.live[snap.ID]; mine {
		return
	}
	if r.remote == nil {
		r.remote = map[string]remoteSession{}
	}
	if had, ok := r.remote[snap.ID]; ok && had.snap.StateSince.After(snap.StateSince) {
		return // an event since told more than this list
	}
	r.remote[snap.ID] = remoteSession{snap: snap, node: node}
}

// Live returns this node's live sessions' snapshots.
func (r *Registry) Live() []Snapshot {
	var out []Snapshot
	for _, s := range r.liveSessions() {
		out = append(out, s.Snapshot())
	}
	return out
}

// SetForwarder sets the engine's Forwarder, before it serves.
func (e *Engine) SetForwarder(f Forwarder) { e.cfg.Forwarder = f }

// ForgetNode drops what this node knew of node's sessions (it died; the
// nodes that claim its calls tell of them again).
func (r *Registry) ForgetNode(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rs := range r.remote {
		if rs.node == node {
			delete(r.remote, id)
		}
	}
}

// Owner is the node that owns session id, when another node does.
func (r *Registry) Owner(id string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, mine := r.live[id]; mine {
		return "", false
	}
	rs, ok := r.remote[id]
	if !ok || rs.snap.State.Ended() {
		return "", false
	}
	return rs.node, true
}

// remoteOwner is the node an operation on session id goes to: another
// node that carries it, when this one does not and can forward.
func (e *Engine) remoteOwner(id string) (string, bool) {
	if e.cfg.Forwarder == nil || e.reg.liveSession(id) != nil {
		return "", false
	}
	return e.reg.Owner(id)
}

// GetAny is Get, or another node's session.
func (r *Registry) GetAny(id string) (Snapshot, bool) {
	if snap, ok := r.Get(id); ok {
		return snap, true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	rs, ok := r.remote[id]
	rs.snap.Node = rs.node
	return rs.snap, ok
}

// ListAll is List with the other nodes' sessions, oldest first.
func (r *Registry) ListAll() []Snapshot {
	out := r.List()
	r.mu.Lock()
	r.pruneRemoteLocked()
	for id, rs := range r.remote {
		if _, mine := r.live[id]; !mine && !slices.ContainsFunc(out, func(s Snapshot) bool { return s.ID == id }) {
			snap := rs.snap
			snap.Node = rs.node
			out = append(out, snap)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Snapshot) int { return a.Start.Compare(b.Start) })
	return out
}

// A Forwarder runs an operation on the node that owns the session (package
// cluster, over NATS request/reply) and returns what the owner's Do
// returned: its results (nil but for startListen) and its error.
type Forwarder interface {
	Forward(ctx context.Context, node string, op ForwardedOp) (map[string]string, error)
}

// ForwardedOp is an operation on its way to the session's owner.
type ForwardedOp struct {
	Name string            `json:"name"`
	ID   string            `json:"id"`
	Args map[string]string `json:"args,omitempty"`
}

// Do runs a forwarded operation here, as the API would, and returns its
// results: startListen's listenId and sdp (the answer); nil for the others.
func (e *Engine) Do(ctx context.Context, op ForwardedOp) (map[string]string, error) {
	a := op.Args
	switch op.Name {
	case "startListen":
		if err := checkListenOffer(a["sdp"]); err != nil {
			return nil, err
		}
		listenID, answer, err := e.listenHere(ctx, op.ID, a["client"], a["sdp"])
		if err != nil {
			return nil, err
		}
		return map[string]string{"listenId": listenID, "sdp": answer}, nil
	case "stopListen":
		return nil, e.stopListenHere(op.ID, a["listenId"])
	}
	return nil, e.do(ctx, op)
}

// do runs the forwarded operations that return nothing but an error.
func (e *Engine) do(ctx context.Context, op ForwardedOp) error {
	a := op.Args
	switch op.Name {
	case "hold":
		return e.Hold(ctx, op.ID)
	case "unhold":
		return e.Unhold(ctx, op.ID)
	case "hangup":
		return e.Hangup(ctx, op.ID)
	case "close":
		return e.Close(ctx, op.ID)
	case "closeWithHangup":
		return e.CloseWithHangup(ctx, op.ID)
	case "blindTransfer":
		return e.BlindTransfer(ctx, op.ID, a["transferor"], a["target"])
	case "forward":
		return e.Forward(ctx, op.ID, a["target"])
	case "sendDtmf":
		return e.SendDtmf(ctx, op.ID, a["key"], a["party"])
	}
	return &OpError{Code: CodeInvalidArgument, Op: op.Name, Field: "operation", Msg: fmt.Sprintf("operation %q cannot be forwarded", op.Name)}
}
