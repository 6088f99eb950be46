package cluster

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/session"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Subjects of the nodes' messages. Each node publishes its sessions'
// events on events.<node>, answers operations on ops.<node> and a list of
// its live sessions on sessions; it tells them on sessions.known when it
// sees a node it did not see before.
const (
	subjectEvents   = "callctl.events."
	subjectOps      = "callctl.ops."
	subjectSessions = "callctl.sessions"
	subjectKnown    = "callctl.sessions.known"
)

// opTimeout bounds a forwarded operation (a transfer waits for its final
// NOTIFY on the owner).
const opTimeout = 45 * time.Second

// bus shares the sessions of every node: events out and in, operations
// forwarded to their owner.
type bus struct {
	c    *Cluster
	reg  *session.Registry
	subs []*nats.Subscription
	sub  *session.Subscription
}

// startBus subscribes this node to the others' news and requests.
func (c *Cluster) startBus() error {
	nc := c.st.Conn()
	b := &bus{c: c, reg: c.eng.Registry()}
	c.bus = b
	for subject, h := range map[string]nats.MsgHandler{
		subjectEvents + "*":     b.onEvent,
		subjectOps + c.cfg.Node: b.onOp,
		subjectSessions:         b.onSessions,
		subjectKnown:            b.onKnown,
	} {
		s, err := nc.Subscribe(subject, h)
		if err != nil {
			b.stop()
			return err
		}
		b.subs = append(b.subs, s)
	}
	b.sub = b.reg.Subscribe(4096)
	c.wg.Add(1)
	go b.export()
	return nil
}

// export publishes this node's own events for the others.
func (b *bus) export() {
	defer b.c.wg.Done()
	nc := b.c.st.Conn()
	subject := subjectEvents + b.c.cfg.Node
	for ev := range b.sub.C() {
		if ev.Node != "" || !b.c.hasPeers.Load() {
			continue // another node's, passed on here; or nobody to tell
		}
		data, err := json.Marshal(ev)
		if err == nil {
			err = nc.Publish(subject, data)
		}
		if err != nil && b.c.ctx.Err() == nil {
			b.c.log.Warn("cluster: an event not passed to the other nodes", zap.String("session", ev.SessionID), zap.Error(err))
		}
	}
}

// onEvent takes another node's event into this node's registry.
func (b *bus) onEvent(m *nats.Msg) {
	node := strings.TrimPrefix(m.Subject, subjectEvents)
	if node == b.c.cfg.Node {
		return
	}
	ev, ok := decodeEvent(m.Data)
	if !ok {
		b.c.log.Warn("cluster: an unreadable event from another node", zap.String("node", node))
		return
	}
	b.reg.Remote(node, ev)
}

// decodeEvent reads another node's event; what the NATS system carries
// is input like any other.
func decodeEvent(data []byte) (session.Event, bool) {
	var ev session.Event
	if err := json.Unmarshal(data, &ev); err != nil || ev.SessionID == "" || !ev.State.Valid() || !ev.Session.State.Valid() {
		return session.Event{}, false
	}
	return ev, true
}

// sessionsReply is a node's answer on subjectSessions.
type sessionsReply struct {
	Node     string             `json:"node"`
	Sessions []session.Snapshot `json:"sessions"`
}

func (b *bus) onSessions(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	data, _ := json.Marshal(sessionsReply{Node: b.c.cfg.Node, Sessions: b.reg.Live()})
	_ = m.Respond(data)
}

// sync asks every node for its live sessions (a node that starts knows the
// others' calls from then on by their events).
func (b *bus) sync() {
	nc := b.c.st.Conn()
	inbox := nc.NewRespInbox()
	replies, err := nc.SubscribeSync(inbox)
	if err != nil {
		return
	}
	defer func() { _ = replies.Unsubscribe() }()
	if err := nc.PublishRequest(subjectSessions, inbox, nil); err != nil {
		return
	}
	deadline := time.Now().Add(time.Second)
	for {
		m, err := replies.NextMsg(time.Until(deadline))
		if err != nil {
			return
		}
		b.takeSessions(m.Data)
	}
}

// announce tells the other nodes this node's live sessions. It is called
// when this node sees a node it did not see before: until then its events
// went to nobody (export publishes only while it has peers), and a node
// that came up meanwhile asked for the sessions (sync) before these calls
// existed, so without this it would not know them until their next event.
func (b *bus) announce() {
	data, err := json.Marshal(sessionsReply{Node: b.c.cfg.Node, Sessions: b.reg.Live()})
	if err == nil {
		err = b.c.st.Conn().Publish(subjectKnown, data)
	}
	if err != nil && b.c.ctx.Err() == nil {
		b.c.log.Warn("cluster: this node's sessions not told to a new node", zap.Error(err))
	}
}

func (b *bus) onKnown(m *nats.Msg) { b.takeSessions(m.Data) }

// takeSessions records another node's live sessions (a reply to sync, or
// an announcement).
func (b *bus) takeSessions(data []byte) {
	r, ok := decodeSessions(data)
	if !ok || r.Node == b.c.cfg.Node {
		return
	}
	for _, snap := range r.Sessions {
		b.reg.Known(r.Node, snap)
	}
}

// decodeSessions reads a node's list of its live sessions; those without
// an id or in a state that is not one, or not live, are left out.
func decodeSessions(data []byte) (sessionsReply, bool) {
	var r sessionsReply
	if err := json.Unmarshal(data, &r); err != nil || r.Node == "" {
		return sessionsReply{}, false
	}
	r.Sessions = slices.DeleteFunc(r.Sessions, func(s session.Snapshot) bool {
		return s.ID == "" || !s.State.Valid() || s.State.Ended()
	})
	return r, true
}

func (b *bus) stop() {
	for _, s := range b.subs {
		_ = s.Unsubscribe()
	}
	if b.sub != nil {
		b.sub.Close()
	}
}
