package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/nats-io/nats.go"
)

// Audit and call records stay in each node's own audit database; a read
// on any node asks every live node for its matching records
// (callctl.records, scatter and gather) and merges them, newest first,
// each marked with the node that holds it (docs/cluster.md, "Records").

const subjectRecords = "callctl.records"

// recordsWait bounds how long a read waits for the other nodes' answers.
const recordsWait = 2 * time.Second

// Kinds of records a query asks for.
const (
	kindRequests = "requests"
	kindCalls    = "calls"
)

// recordsQuery is a read of one kind of record, as it travels.
type recordsQuery struct {
	From   string       `json:"from"` // the asking node, which answers itself
	Kind   string       `json:"kind"`
	Filter audit.Filter `json:"filter"`
}

// recordsReply is one node's answer.
type recordsReply struct {
	Node     string          `json:"node"`
	Requests []audit.Request `json:"requests,omitempty"`
	Calls    []audit.Call    `json:"calls,omitempty"`
	Error    string          `json:"error,omitempty"`
	// Cut says the node had more matching records than fit in one NATS
	// message; the newest that fit are here.
	Cut bool `json:"cut,omitempty"`
}

// decodeRecordsQuery reads another node's query; what NATS carries is
// input like any other.
func decodeRecordsQuery(data []byte) (recordsQuery, bool) {
	var q recordsQuery
	if json.Unmarshal(data, &q) != nil || (q.Kind != kindRequests && q.Kind != kindCalls) {
		return recordsQuery{}, false
	}
	q.Filter.Limit = limit(q.Filter)
	if q.Filter.BeforeID < 0 {
		q.Filter.BeforeID = 0
	}
	return q, true
}

// limit is how many records a filter asks for, as the audit store reads
// it (0 is its default, more than its most is cut).
func limit(f audit.Filter) int {
	switch {
	case f.Limit <= 0:
		return audit.DefaultLimit
	case f.Limit > audit.MaxLimit:
		return audit.MaxLimit
	}
	return f.Limit
}

// onRecords answers another node's query from this node's audit database.
func (b *bus) onRecords(m *nats.Msg) {
	if m.Reply == "" || b.c.cfg.Audit == nil {
		return
	}
	r := recordsReply{Node: b.c.cfg.Node}
	q, ok := decodeRecordsQuery(m.Data)
	if ok && q.From == b.c.cfg.Node {
		return
	}
	if !ok {
		r.Error = "unreadable records query"
	} else {
		ctx, cancel := context.WithTimeout(b.c.ctx, recordsWait)
		var err error
		if q.Kind == kindRequests {
			r.Requests, err = b.c.cfg.Audit.Requests(ctx, q.Filter)
		} else {
			r.Calls, err = b.c.cfg.Audit.Calls(ctx, q.Filter)
		}
		cancel()
		if err != nil {
			r.Error = err.Error()
		}
	}
	_ = m.Respond(fitReply(r, int(b.c.st.Conn().MaxPayload())))
}

// fitReply encodes r, halving its records until it fits in max bytes.
func fitReply(r recordsReply, max int) []byte {
	for {
		data, _ := json.Marshal(r)
		if len(data) <= max || (len(r.Requests) == 0 && len(r.Calls) == 0) {
			return data
		}
		r.Requests, r.Calls, r.Cut = r.Requests[:len(r.Requests)/2], r.Calls[:len(r.Calls)/2], true
	}
}

// Read says what a read of records holds.
type Read struct {
	// Nodes are the nodes whose records it holds; a live node that did not
	// answer in time is missing.
	Nodes []string `json:"nodes"`
	// Cut are the nodes that had more matching records than fit in one
	// NATS message (their newest are in); empty almost always.
	Cut []string `json:"cut,omitempty"`
}

// Requests reads the API requests audited on every live node (only on
// node, when it is not ""), merged newest first.
func (c *Cluster) Requests(ctx context.Context, f audit.Filter, node string) ([]audit.Request, Read, error) {
	replies, err := c.gather(ctx, recordsQuery{From: c.cfg.Node, Kind: kindRequests, Filter: f}, node)
	if err != nil {
		return nil, Read{}, err
	}
	return mergeRequests(replies, limit(f)), answered(replies), nil
}

// mergeRequests is the replies' requests, each marked with its node,
// newest first, at most n.
func mergeRequests(replies []recordsReply, n int) []audit.Request {
	var out []audit.Request
	for _, r := range replies {
		for _, rec := range r.Requests {
			rec.Node = r.Node
			out = append(out, rec)
		}
	}
	slices.SortStableFunc(out, func(a, b audit.Request) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Node, b.Node), cmp.Compare(b.ID, a.ID))
	})
	return out[:min(len(out), n)]
}

// Calls reads the call records of every live node (only of node, when it
// is not ""), merged newest first (by end, or start while a call has no
// end).
func (c *Cluster) Calls(ctx context.Context, f audit.Filter, node string) ([]audit.Call, Read, error) {
	replies, err := c.gather(ctx, recordsQuery{From: c.cfg.Node, Kind: kindCalls, Filter: f}, node)
	if err != nil {
		return nil, Read{}, err
	}
	return mergeCalls(replies, limit(f)), answered(replies), nil
}

// mergeCalls is the replies' call records, each marked with its node,
// newest first (by end, or start while a call has no end), at most n.
func mergeCalls(replies []recordsReply, n int) []audit.Call {
	var out []audit.Call
	for _, r := range replies {
		for _, rec := range r.Calls {
			rec.Node = r.Node
			out = append(out, rec)
		}
	}
	sortTime := func(c audit.Call) time.Time {
		if c.End.IsZero() {
			return c.Start
		}
		return c.End
	}
	slices.SortStableFunc(out, func(a, b audit.Call) int {
		return cmp.Or(sortTime(b).Compare(sortTime(a)), b.Start.Compare(a.Start), cmp.Compare(b.SessionID, a.SessionID))
	})
	return out[:min(len(out), n)]
}

// UnknownNodeError is a read of the records of a node that is not live.
type UnknownNodeError struct {
	Node string
	Live []string
}

func (e *UnknownNodeError) Error() string {
	return "node " + strconv.Quote(e.Node) + " is not a live node of the cluster (live: " + strings.Join(e.Live, ", ") + ")"
}

// ErrBeforeNeedsNode refuses paging by request id across nodes: each
// node numbers its own.
var ErrBeforeNeedsNode = errors.New("before pages one node's requests (each node numbers its own): give node too, or page by until")

// gather reads this node's records and asks the other live nodes for
// theirs (only node's, when it is not ""), waiting up to recordsWait for
// each. A node that does not answer in time is left out (its name is
// missing from the answered list).
func (c *Cluster) gather(ctx context.Context, q recordsQuery, node string) ([]recordsReply, error) {
	peers := c.Peers(ctx)
	if node != "" && node != c.cfg.Node && !slices.Contains(peers, node) {
		return nil, &UnknownNodeError{Node: node, Live: append([]string{c.cfg.Node}, peers...)}
	}
	if node == "" && q.Filter.BeforeID != 0 && len(peers) > 0 {
		return nil, ErrBeforeNeedsNode
	}
	var out []recordsReply
	if node == "" || node == c.cfg.Node {
		own := recordsReply{Node: c.cfg.Node}
		var err error
		if c.cfg.Audit != nil {
			if q.Kind == kindRequests {
				own.Requests, err = c.cfg.Audit.Requests(ctx, q.Filter)
			} else {
				own.Calls, err = c.cfg.Audit.Calls(ctx, q.Filter)
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, own)
		if node != "" {
			return out, nil
		}
	}
	if node != "" {
		peers = []string{node}
	}
	if len(peers) == 0 {
		return out, nil
	}
	nc := c.st.Conn()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return out, nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	data, _ := json.Marshal(q)
	if err := nc.PublishRequest(subjectRecords, inbox, data); err != nil {
		return out, nil
	}
	deadline := time.Now().Add(recordsWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	heard := map[string]bool{}
	for len(heard) < len(peers) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var r recordsReply
		if json.Unmarshal(m.Data, &r) != nil || !slices.Contains(peers, r.Node) || heard[r.Node] || r.Error != "" {
			continue
		}
		heard[r.Node] = true
		out = append(out, r)
	}
	return out, nil
}

// answered says which nodes' records a read holds, sorted.
func answered(replies []recordsReply) Read {
	r := Read{Nodes: make([]string, 0, len(replies))}
	for _, rep := range replies {
		r.Nodes = append(r.Nodes, rep.Node)
		if rep.Cut {
			r.Cut = append(r.Cut, rep.Node)
		}
	}
	slices.Sort(r.Nodes)
	slices.Sort(r.Cut)
	return r
}
