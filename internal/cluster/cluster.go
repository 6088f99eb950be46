package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/internal/store"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Config is this node's part in the cluster.
type Config struct {
	Node        string
	Heartbeat   time.Duration
	NodeTimeout time.Duration
	// SIP and API are this node's addresses, told in its heartbeat.
	SIP, API string
	// Audit is this node's audit database, which the other nodes read
	// through this one; nil answers no reads.
	Audit *audit.Store
}

// Beat is what a node's heartbeat says.
type Beat struct {
	Node     string    `json:"node"`
	Instance string    `json:"instance"` // this process
	SIP      string    `json:"sip"`
	API      string    `json:"api"`
	Started  time.Time `json:"started"`
}

// Cluster runs this node's heartbeat and claims.
type Cluster struct {
	cfg      Config
	st       *store.Store
	eng      *session.Engine
	log      *zap.Logger
	instance string
	started  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	seen     map[string]bool      // nodes alive at the last look
	beats    int                  // this node's heartbeats written so far
	last     map[string]heartbeat // each node's latest heartbeat, as this node saw it
	owners   map[string]time.Time // other nodes named by call records, since when
	leaving  atomic.Bool
	hasPeers atomic.Bool // other nodes were alive at the last look

	claimed atomic.Uint64 // calls claimed from other nodes
	bus     *bus          // the other nodes' sessions and operations (bus.go)
	pulses  *nats.Subscription
	writing atomic.Bool // a node entry is being written (beat)
}

// heartbeat is a node's latest heartbeat as heard here: how many of this
// node's own heartbeats had come back when it came. A node is dead when
// NodeTimeout's worth of this node's own came back since: a clock that
// runs only while NATS carries messages, so a NATS that stalls makes
// nobody look dead.
type heartbeat struct {
	atBeat int
}

// New prepares the cluster side of a node; Adopt and Start run it.
func New(cfg Config, st *store.Store, eng *session.Engine, log *zap.Logger) *Cluster {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	return &Cluster{cfg: cfg, st: st, eng: eng, log: log, instance: hex.EncodeToString(b[:]), started: time.Now(),
		ctx: ctx, cancel: cancel, seen: map[string]bool{}, last: map[string]heartbeat{}, owners: map[string]time.Time{}}
}

// Claimed is the number of calls this node claimed from others.
func (c *Cluster) Claimed() uint64 { return c.claimed.Load() }

// Adopt claims this node's own records (its previous process died) before
// SIP serves, so that nobody else claims them meanwhile, and re-registers
// their calls; the start it returns begins their re-INVITEs. Records of
// other nodes that have no heartbeat are looked at again once the others
// had NodeTimeout to announce themselves.
func (c *Cluster) Adopt(ctx context.Context) (start func(), err error) {
	recs, err := c.st.Records(ctx)
	if err != nil {
		return nil, err
	}
	var mine []session.RecordEntry
	for _, r := range recs {
		// Other nodes' records: watchRecords sees their owners, and look
		// claims those of owners that give no heartbeat.
		if session.RecordOwner(r.Value) != c.cfg.Node {
			continue
		}
		// The store may still be electing its leader: try until ctx ends.
		for {
			e, ok, retry := c.claim(ctx, r)
			if ok {
				mine = append(mine, e)
			}
			if !retry || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return c.eng.Recover(mine), nil
}

// claim makes this node the owner of r (compare-and-swap on its
// revision). retry says the store failed (not a conflict: someone else
// was first), so the call may still be nobody's.
func (c *Cluster) claim(ctx context.Context, r store.Entry) (e session.RecordEntry, ok, retry bool) {
	value, err := session.WithOwner(r.Value, c.cfg.Node)
	if err != nil {
		c.log.Error("cluster: a call record that is not one; left alone", zap.String("session", r.Key), zap.Error(err))
		return session.RecordEntry{}, false, false
	}
	rev, err := c.st.Claim(ctx, r.Key, value, r.Revision)
	if errors.Is(err, store.ErrConflict) {
		return session.RecordEntry{}, false, false // someone else was first
	}
	if err != nil {
		c.log.Warn("cluster: claiming a call failed; trying again", zap.String("session", r.Key), zap.Error(err))
		return session.RecordEntry{}, false, true
	}
	return session.RecordEntry{Key: r.Key, Value: value, Revision: rev}, true, false
}

// Start runs the heartbeat, the watch on the nodes and the watch on the
// records until Stop.
func (c *Cluster) Start() error {
	// Heartbeats first: they are what the others judge this node by.
	pulses, err := c.st.Conn().Subscribe(subjectPulse+"*", c.onPulse)
	if err != nil {
		return err
	}
	c.pulses = pulses
	if err := c.startBus(); err != nil {
		return err
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.watchRecords() // may take seconds while the cluster forms
		c.bus.sync()
	}()
	go func() {
		c.beat()
		c.look()
		c.loop()
	}()
	return nil
}

// watchRecords follows the call records (those there already, then every
// change): a record another node claims names it, and the call is let go
// here; and every owner named is remembered, so that the records of a node
// this one never heard from (it died before this one started) are claimed
// too. JetStream may take seconds to set the watcher up while the cluster
// forms: it is tried until it works.
func (c *Cluster) watchRecords() {
	for c.ctx.Err() == nil {
		err := c.st.WatchCalls(c.ctx, func(key string, value []byte) {
			if value == nil {
				return
			}
			owner := session.RecordOwner(value)
			if owner == "" || owner == c.cfg.Node {
				return
			}
			c.eng.Release(key, owner)
			c.mu.Lock()
			if _, ok := c.owners[owner]; !ok {
				c.owners[owner] = time.Now()
			}
			c.mu.Unlock()
		})
		if err == nil {
			return
		}
		c.log.Debug("cluster: watching the call records", zap.Error(err))
		select {
		case <-c.ctx.Done():
		case <-time.After(c.cfg.Heartbeat):
		}
	}
}

func (c *Cluster) loop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.leaving.Load() {
			c.beat()
		}
		c.look()
	}
}

// subjectPulse carries the nodes' heartbeats over core NATS, which keeps
// flowing while JetStream elects a new leader (a KV write can stall for
// seconds then, and a node must not look dead for it).
const subjectPulse = "callctl.pulse."

// Pulse payloads.
const (
	pulseAlive   = "alive"
	pulseLeaving = "leaving"
)

// beat sends this node's heartbeat: a pulse every node hears (this one
// too: its own echo is the clock of live), and the node's entry in the
// nodes bucket (who is there, with its addresses, for tools), written in
// the background.
func (c *Cluster) beat() {
	if err := c.st.Conn().Publish(subjectPulse+c.cfg.Node, []byte(pulseAlive)); err != nil && c.ctx.Err() == nil {
		c.log.Warn("cluster: heartbeat not sent", zap.Error(err))
	}
	if !c.writing.CompareAndSwap(false, true) {
		return // the last entry is still being written
	}
	b, _ := json.Marshal(Beat{Node: c.cfg.Node, Instance: c.instance, SIP: c.cfg.SIP, API: c.cfg.API, Started: c.started})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.writing.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.NodeTimeout)
		defer cancel()
		if err := c.st.Beat(ctx, c.cfg.Node, b); err != nil && c.ctx.Err() == nil {
			c.log.Debug("cluster: node entry not written", zap.Error(err))
		}
	}()
}

// onPulse takes a node's heartbeat.
func (c *Cluster) onPulse(m *nats.Msg) {
	node := strings.TrimPrefix(m.Subject, subjectPulse)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case node == c.cfg.Node:
		c.beats++ // this node's own, back: NATS carries the others' too
	case string(m.Data) == pulseLeaving:
		delete(c.last, node)
	default:
		c.last[node] = heartbeat{atBeat: c.beats}
	}
}

// live is the set of nodes alive: this one, and those whose heartbeat
// advanced within the last NodeTimeout of this node's own heartbeats.
func (c *Cluster) live(context.Context) (map[string]bool, error) {
	window := max(int(c.cfg.NodeTimeout/c.cfg.Heartbeat), 3)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{c.cfg.Node: true}
	for n, h := range c.last {
		if c.beats-h.atBeat < window {
			out[n] = true
		}
	}
	return out, nil
}

// Peers are the other live nodes.
func (c *Cluster) Peers(ctx context.Context) []string {
	live, err := c.live(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for n := range live {
		if n != c.cfg.Node {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// look compares the live nodes with those seen before: the calls of a
// node that is gone are claimed.
func (c *Cluster) look() {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	live, err := c.live(ctx)
	if err != nil {
		return
	}
	c.mu.Lock()
	var gone []string
	for n := range c.seen {
		if !live[n] && n != c.cfg.Node {
			gone = append(gone, n)
		}
	}
	// Owners of records never heard from for a node timeout: dead too.
	for owner, since := range c.owners {
		if live[owner] {
			delete(c.owners, owner)
		} else if time.Since(since) > c.cfg.NodeTimeout && time.Since(c.started) > c.cfg.NodeTimeout {
			gone = append(gone, owner)
			delete(c.owners, owner)
		}
	}
	// A node heard for the first time may have had calls before either
	// heard the other (its events were not passed on yet): ask again.
	joined := false
	for n := range live {
		if !c.seen[n] && n != c.cfg.Node {
			joined = true
		}
	}
	c.seen = live
	c.hasPeers.Store(len(live) > 1)
	c.mu.Unlock()
	if joined {
		c.bus.resync()
	}
	if len(gone) > 0 {
		c.log.Warn("cluster: nodes gone; claiming their calls", zap.Strings("nodes", gone))
		for _, n := range gone {
			c.eng.Registry().ForgetNode(n)
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.claimFrom(live)
		}()
	}
}

// claimFrom claims the records whose owner has no heartbeat: each first by
// the live node that rendezvous hashing picks for it (spreading the calls),
// and whatever is left after NodeTimeout by any node.
func (c *Cluster) claimFrom(live map[string]bool) {
	if c.leaving.Load() {
		return
	}
	nodes := make([]string, 0, len(live)+1)
	for n := range live {
		nodes = append(nodes, n)
	}
	if !live[c.cfg.Node] {
		nodes = append(nodes, c.cfg.Node)
	}
	// Round 0 claims what rendezvous hashing gives this node; round 1, a
	// node timeout later, whatever is still unclaimed. A round that could
	// not read or write the records (JetStream electing a leader after the
	// loss) is tried again, for up to claimPersistence.
	giveUp := time.Now().Add(claimPersistence)
	for round := 0; !c.leaving.Load(); round++ {
		ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
		recs, err := c.st.Records(ctx)
		var won []session.RecordEntry
		failed := err != nil
		for _, r := range recs {
			owner := session.RecordOwner(r.Value)
			if owner == c.cfg.Node || live[owner] && owner != "" {
				continue
			}
			if round == 0 && pick(nodes, r.Key) != c.cfg.Node {
				continue // another survivor's to claim first
			}
			e, ok, retry := c.claim(ctx, r)
			if ok {
				won = append(won, e)
			}
			failed = failed || retry
		}
		cancel()
		if err != nil && c.ctx.Err() == nil {
			c.log.Warn("cluster: reading records to claim", zap.Error(err))
		}
		if len(won) > 0 {
			c.claimed.Add(uint64(len(won)))
			c.log.Info("cluster: claimed calls of nodes gone", zap.Int("calls", len(won)), zap.Int("round", round))
			c.eng.Recover(won)()
		}
		if round >= 1 && (!failed || time.Now().After(giveUp)) {
			if failed {
				c.log.Error("cluster: calls of nodes gone left unclaimed: the store kept failing", zap.Duration("for", claimPersistence))
			}
			return
		}
		wait := c.cfg.NodeTimeout
		if round >= 1 {
			wait = c.cfg.Heartbeat
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// claimPersistence bounds how long claims are retried while the store
// fails.
const claimPersistence = time.Minute

// pick is the node rendezvous hashing gives key to: every node computes
// the same from the same list.
func pick(nodes []string, key string) string {
	var best string
	var top uint64
	for _, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(key))
		if s := h.Sum64(); best == "" || s > top || s == top && n < best {
			best, top = n, s
		}
	}
	return best
}

// HandOff gives this node's calls to the other nodes (a deploy's SIGTERM):
// its heartbeat goes at once, so they claim its calls as a dead node's,
// and each call is let go as its record names its new owner. It returns
// false at once when no other node is alive (a single node drains
// instead), else once no call is left here or wait passed.
func (c *Cluster) HandOff(wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	peers := c.Peers(ctx)
	cancel()
	if len(peers) == 0 {
		return false
	}
	c.leaving.Store(true)
	if err := c.st.Conn().Publish(subjectPulse+c.cfg.Node, []byte(pulseLeaving)); err != nil {
		c.log.Warn("cluster: leaving not told; the others claim the calls once the heartbeat lapses", zap.Error(err))
	}
	ctx, cancel = context.WithTimeout(c.ctx, 5*time.Second)
	_ = c.st.Forget(ctx, c.cfg.Node)
	cancel()
	n := len(c.eng.Owned())
	c.log.Info("cluster: handing calls to the other nodes", zap.Int("calls", n), zap.Strings("nodes", peers))
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && len(c.eng.Owned()) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	if left := len(c.eng.Owned()); left > 0 {
		c.log.Warn("cluster: calls not taken by another node in time", zap.Int("calls", left))
	}
	return true
}

// Stop ends the heartbeat and the watches.
func (c *Cluster) Stop() {
	c.cancel()
	if c.pulses != nil {
		_ = c.pulses.Unsubscribe()
	}
	if c.bus != nil {
		c.bus.stop()
	}
	c.wg.Wait()
}
