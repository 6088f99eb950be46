package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/listen"
	"github.com/callctl/callctl/internal/session"
	"github.com/nats-io/nats.go"
)

// Operations forwarded to the node that carries the call (docs/cluster.md,
// "Operations anywhere"): a request on callctl.ops.<owner>, answered with
// the outcome and, for startListen, the listener's id and SDP answer.
// Anyone on the NATS system can publish there, so both directions are
// read as input from a stranger: bounded, then checked.

// maxOpMessage bounds a forwarded operation and its reply. The largest is
// a listen-in's offer or answer (listen.MaxSDP) in JSON's escaping, which
// at most doubles it in practice; the rest are a few short strings.
const maxOpMessage = 4*listen.MaxSDP + 4<<10

// maxClientName bounds the client named in a forwarded listen-in: it goes
// into the owner's logs and events.
const maxClientName = 1 << 10

// opReply is the owner's answer to a forwarded operation.
type opReply struct {
	Error  *wireError        `json:"error,omitempty"`
	Result map[string]string `json:"result,omitempty"`
}

// wireError is a session.OpError as it travels.
type wireError struct {
	Code          session.Code    `json:"code"`
	Op            string          `json:"op"`
	Field         string          `json:"field,omitempty"`
	Allowed       []string        `json:"allowed,omitempty"`
	State         session.State   `json:"state,omitempty"`
	AllowedStates []session.State `json:"allowed_states,omitempty"`
	Party         string          `json:"party,omitempty"`
	Status        int             `json:"status,omitempty"`
	Msg           string          `json:"msg"`
}

// decodeOp reads a forwarded operation. A listen-in's offer is checked
// here as on the node the client talked to (listen.CheckOffer), and again,
// against the call's codecs, when the listener starts.
func decodeOp(data []byte) (session.ForwardedOp, error) {
	if len(data) > maxOpMessage {
		return session.ForwardedOp{}, fmt.Errorf("forwarded operation of %d bytes; at most %d", len(data), maxOpMessage)
	}
	var op session.ForwardedOp
	if err := json.Unmarshal(data, &op); err != nil {
		return session.ForwardedOp{}, fmt.Errorf("unreadable forwarded operation: %v", err)
	}
	if op.ID == "" || op.Name == "" {
		return session.ForwardedOp{}, errors.New("forwarded operation without name or session id")
	}
	switch op.Name {
	case "startListen":
		if c := op.Args["client"]; c == "" || len(c) > maxClientName {
			return session.ForwardedOp{}, fmt.Errorf("forwarded listen-in: client name of %d bytes; want 1 to %d", len(c), maxClientName)
		}
		if err := listen.CheckOffer(op.Args["sdp"]); err != nil {
			return session.ForwardedOp{}, fmt.Errorf("forwarded listen-in offer: %w", err)
		}
	case "stopListen":
		if !listen.ValidID(op.Args["listenId"]) {
			return session.ForwardedOp{}, errors.New("forwarded stopListen without a valid listenId")
		}
	}
	return op, nil
}

// decodeOpReply reads the owner's answer: an error of a known code, or a
// result.
func decodeOpReply(data []byte) (opReply, bool) {
	var r opReply
	if len(data) > maxOpMessage || json.Unmarshal(data, &r) != nil {
		return opReply{}, false
	}
	if r.Error != nil {
		switch r.Error.Code {
		case session.CodeInvalidArgument, session.CodeWrongState, session.CodeNotFound, session.CodePeerRefused, session.CodeTimeout:
		default:
			return opReply{}, false
		}
	}
	return r, true
}

func (b *bus) onOp(m *nats.Msg) {
	op, err := decodeOp(m.Data)
	if err != nil {
		data, _ := json.Marshal(opReply{Error: &wireError{Code: session.CodeInvalidArgument, Op: op.Name, Msg: err.Error()}})
		_ = m.Respond(data)
		return
	}
	b.c.wg.Add(1)
	go func() {
		defer b.c.wg.Done()
		ctx, cancel := context.WithTimeout(b.c.ctx, opTimeout)
		defer cancel()
		var r opReply
		res, err := b.c.eng.Do(ctx, op)
		if err != nil {
			var oe *session.OpError
			if !errors.As(err, &oe) {
				oe = &session.OpError{Code: session.CodeTimeout, Op: op.Name, Msg: err.Error()}
			}
			r.Error = &wireError{Code: oe.Code, Op: oe.Op, Field: oe.Field, Allowed: oe.Allowed, State: oe.State,
				AllowedStates: oe.AllowedStates, Party: oe.Party, Status: oe.Status, Msg: oe.Msg}
		} else {
			r.Result = res
		}
		data, _ := json.Marshal(r)
		_ = m.Respond(data)
	}()
}

// errNodeGone ends a wait for a node whose heartbeat lapsed.
var errNodeGone = errors.New("the node is gone")

// cancelIfGone cancels ctx once node is no longer live, looking at each
// heartbeat; it returns when ctx ends (its caller's return).
func (c *Cluster) cancelIfGone(ctx context.Context, cancel context.CancelCauseFunc, node string) {
	t := time.NewTicker(max(c.cfg.Heartbeat, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if live, _ := c.live(ctx); !live[node] {
				cancel(errNodeGone)
				return
			}
		}
	}
}

// Forward runs op on node, the session's owner, and returns its results
// and outcome as if it ran here (session.Forwarder).
func (c *Cluster) Forward(ctx context.Context, node string, op session.ForwardedOp) (map[string]string, error) {
	data, err := json.Marshal(op)
	if err != nil {
		return nil, err
	}
	// A node killed while the request is on its way never answers, and
	// its subscription may outlive it for a moment (no "no responders"):
	// the wait ends as soon as its heartbeat lapses.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go c.cancelIfGone(ctx, cancel, node)
	m, err := c.st.Conn().RequestWithContext(ctx, subjectOps+node, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(context.Cause(ctx), errNodeGone):
		// The owner is gone; a survivor re-adopts the call within
		// cluster.node_timeout (a listen-in is not re-adopted: it is
		// started again once the call has its new owner).
		return nil, &session.OpError{Code: session.CodeTimeout, Op: op.Name,
			Msg: "the node carrying the call (" + node + ") is gone; another node takes the call over within seconds: try again"}
	case err != nil:
		return nil, &session.OpError{Code: session.CodeTimeout, Op: op.Name, Msg: "forwarding to node " + node + ": " + err.Error()}
	}
	r, ok := decodeOpReply(m.Data)
	if !ok {
		return nil, &session.OpError{Code: session.CodeTimeout, Op: op.Name, Msg: "node " + node + " answered unreadably"}
	}
	if r.Error == nil {
		return r.Result, nil
	}
	e := r.Error
	return nil, &session.OpError{Code: e.Code, Op: e.Op, Field: e.Field, Allowed: e.Allowed, State: e.State,
		AllowedStates: e.AllowedStates, Party: e.Party, Status: e.Status, Msg: e.Msg}
}
