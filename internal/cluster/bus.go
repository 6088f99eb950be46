package cluster

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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
)

// opTimeout bounds a forwarded operation (a transfer waits for its final
// NOTIFY on the owner).
const opTimeout = 45 * time.Second

// headerSeq numbers a node's exported events 1, 2, 3, … (every event of
// its own sessions counts, passed on or not): core NATS may lose a message
// (interest not yet carried over a new route, a slow consumer), and a gap
// tells the others to ask for the node's sessions again.
const headerSeq = "Callctl-Seq"

// bus shares the sessions of every node: events out and in, operations
// forwarded to their owner.
type bus struct {
	c    *Cluster
	reg  *session.Registry
	subs []*nats.Subscription
	sub  *session.Subscription

	lastSeq map[string]uint64 // each node's last event number heard; onEvent's only
	syncing atomic.Bool       // a sync is under way
	again   atomic.Bool       // a sync was asked for since the last began
}

// startBus subscribes this node to the others' news and requests.
func (c *Cluster) startBus() error {
	nc := c.st.Conn()
	b := &bus{c: c, reg: c.eng.Registry(), lastSeq: map[string]uint64{}}
	c.bus = b
	for subject, h := range map[string]nats.MsgHandler{
		subjectEvents + "*":     b.onEvent,
		subjectOps + c.cfg.Node: b.onOp,
		subjectSessions:         b.onSessions,
		subjectRecords:          b.onRecords,
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

// export publishes this node's own events for the others, numbered.
func (b *bus) export() {
	defer b.c.wg.Done()
	nc := b.c.st.Conn()
	subject := subjectEvents + b.c.cfg.Node
	var seq uint64
	for ev := range b.sub.C() {
		if ev.Node != "" {
			continue // another node's, passed on here
		}
		seq++
		if !b.c.hasPeers.Load() {
			continue // nobody to tell; one who comes asks (sync)
		}
		data, err := json.Marshal(ev)
		if err == nil {
			m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
			m.Header.Set(headerSeq, strconv.FormatUint(seq, 10))
			err = nc.PublishMsg(m)
		}
		if err != nil && b.c.ctx.Err() == nil {
			b.c.log.Warn("cluster: an event not passed to the other nodes", zap.String("session", ev.SessionID), zap.Error(err))
		}
	}
}

// onEvent takes another node's event into this node's registry. An event
// whose number does not follow the last heard from its node means some
// were lost (or the node started again): its sessions are asked for anew.
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
	seq, err := strconv.ParseUint(m.Header.Get(headerSeq), 10, 64)
	if err != nil || seq != b.lastSeq[node]+1 {
		b.c.log.Debug("cluster: events of a node missed; asking for its sessions",
			zap.String("node", node), zap.Uint64("last", b.lastSeq[node]), zap.Uint64("now", seq))
		b.resync()
	}
	if err == nil {
		b.lastSeq[node] = seq
	}
	b.reg.Remote(node, ev)
}

// resync runs a sync in the background; asked while one is under way, it
// runs once more after it (that one's answers may predate the news).
func (b *bus) resync() {
	b.again.Store(true)
	if !b.syncing.CompareAndSwap(false, true) {
		return
	}
	b.c.wg.Add(1)
	go func() {
		defer b.c.wg.Done()
		for {
			for b.again.Swap(false) && b.c.ctx.Err() == nil {
				b.sync()
			}
			b.syncing.Store(false)
			if !b.again.Load() || !b.syncing.CompareAndSwap(false, true) {
				return
			}
		}
	}()
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

// sessionsReply is a node's answer on subjectSessions, in parts of at
// most sessionsPerReply sessions (a NATS message holds 1 MB by default;
// a busy node has thousands): More says another part follows.
type sessionsReply struct {
	Node     string             `json:"node"`
	Sessions []session.Snapshot `json:"sessions"`
	More     bool               `json:"more,omitempty"`
}

// sessionsPerReply keeps a part well under a NATS message's size (a
// snapshot is under 1 KB).
const sessionsPerReply = 200

func (b *bus) onSessions(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	live := b.reg.Live()
	for {
		part := live[:min(len(live), sessionsPerReply)]
		live = live[len(part):]
		data, _ := json.Marshal(sessionsReply{Node: b.c.cfg.Node, Sessions: part, More: len(live) > 0})
		if err := m.Respond(data); err != nil || len(live) == 0 {
			return
		}
	}
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
	// Every live peer answers within the second; the peers not heard of
	// yet are waited for that long too.
	peers := len(b.c.Peers(b.c.ctx))
	answered := map[string]bool{}
	deadline := time.Now().Add(time.Second)
	for peers == 0 || len(answered) < peers {
		m, err := replies.NextMsg(time.Until(deadline))
		if err != nil {
			return
		}
		if node, last := b.takeSessions(m.Data); node != "" && last {
			answered[node] = true
		}
	}
}

// takeSessions records another node's live sessions (a part of its reply
// to sync) and returns that node's name ("" for this node's own or an
// unreadable list) and whether the part was its last.
func (b *bus) takeSessions(data []byte) (node string, last bool) {
	r, ok := decodeSessions(data)
	if !ok || r.Node == b.c.cfg.Node {
		return "", false
	}
	for _, snap := range r.Sessions {
		b.reg.Known(r.Node, snap)
	}
	return r.Node, !r.More
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
