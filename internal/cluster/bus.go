package cluster

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/session"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Subjects of the nodes' messages. Each node publishes its sessions'
// events on events.<node>, answers operations on ops.<node> and a list of
// its live sessions on sessions.
const (
	subjectEvents   = "callctl.events."
	subjectOps      = "callctl.ops."
	subjectSessions = "callctl.sessions"
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
		var r sessionsReply
		if json.Unmarshal(m.Data, &r) != nil || r.Node == b.c.cfg.Node {
			continue
		}
		for _, snap := range r.Sessions {
			b.reg.Known(r.Node, snap)
		}
	}
}

func (b *bus) stop() {
	for _, s := range b.subs {
		_ = s.Unsubscribe()
	}
	if b.sub != nil {
		b.sub.Close()
	}
}
