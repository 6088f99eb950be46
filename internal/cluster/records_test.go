package cluster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/audit"
)

// Records of several nodes come out newest first, each naming its node,
// cut to the filter's limit.
func TestMergeRecordsNewestFirstAcrossNodes(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	replies := []recordsReply{
		{Node: "node-1", Requests: []audit.Request{{ID: 9, Time: t0.Add(3 * time.Second)}, {ID: 8, Time: t0}},
			Calls: []audit.Call{{SessionID: "a", Start: t0, End: t0.Add(5 * time.Second)}}},
		{Node: "node-2", Requests: []audit.Request{{ID: 4, Time: t0.Add(2 * time.Second)}},
			Calls: []audit.Call{{SessionID: "b", Start: t0.Add(6 * time.Second)}, {SessionID: "c", Start: t0, End: t0.Add(time.Second)}}},
	}
	reqs := mergeRequests(replies, 2)
	if len(reqs) != 2 || reqs[0].Node != "node-1" || reqs[0].ID != 9 || reqs[1].Node != "node-2" || reqs[1].ID != 4 {
		t.Errorf("merged requests %+v; want node-1's 9, then node-2's 4 (limit 2)", reqs)
	}
	calls := mergeCalls(replies, 10)
	var order []string
	for _, c := range calls {
		order = append(order, c.Node+"/"+c.SessionID)
	}
	if got := strings.Join(order, " "); got != "node-2/b node-1/a node-2/c" {
		t.Errorf("merged calls %s; want node-2/b (live, started last) node-1/a node-2/c", got)
	}
	if r := answered(replies); strings.Join(r.Nodes, ",") != "node-1,node-2" || len(r.Cut) != 0 {
		t.Errorf("answered %+v; want both nodes, none cut", r)
	}
}

// A query from another node is taken only with a known kind, and its
// limit is bounded as the audit store bounds it.
func TestRecordsQueryIsChecked(t *testing.T) {
	for _, bad := range []string{``, `null`, `{"kind":"everything"}`, `{"kind":1}`} {
		if q, ok := decodeRecordsQuery([]byte(bad)); ok {
			t.Errorf("%s taken as %+v", bad, q)
		}
	}
	q, ok := decodeRecordsQuery([]byte(`{"from":"n1","kind":"calls","filter":{"Limit":1000000,"BeforeID":-3}}`))
	if !ok || q.Filter.Limit != audit.MaxLimit || q.Filter.BeforeID != 0 {
		t.Errorf("query %+v, %v; want calls, limit %d, before 0", q, ok, audit.MaxLimit)
	}
}

// A node whose records do not fit in one NATS message sends the newest
// that do, and says it cut them.
func TestRecordsReplyFitsInOneMessage(t *testing.T) {
	r := recordsReply{Node: "node-1"}
	for i := range 1000 {
		r.Requests = append(r.Requests, audit.Request{ID: int64(1000 - i), Operation: "hold", Args: map[string]string{"target": strings.Repeat("x", 1000)}})
	}
	data := fitReply(r, 64<<10)
	if len(data) > 64<<10 {
		t.Fatalf("reply of %d bytes; want at most %d", len(data), 64<<10)
	}
	var got recordsReply
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Cut || len(got.Requests) == 0 || got.Requests[0].ID != 1000 {
		t.Errorf("cut %v, %d requests, first %d; want cut, the newest kept first", got.Cut, len(got.Requests), got.Requests[0].ID)
	}
}
