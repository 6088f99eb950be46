package cluster

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/session"
)

// Whatever another node (or anyone on the NATS system) publishes, reading
// it never panics, an event taken names a session in valid states, and it
// lands in a registry without panicking either.
func FuzzBusMessages(f *testing.F) {
	ev, _ := json.Marshal(session.Event{Seq: 1, Type: session.EventStateChanged, SessionID: "0123456789abcdef", State: session.InCall,
		Session: session.Snapshot{ID: "0123456789abcdef", State: session.InCall}})
	f.Add(ev)
	f.Add([]byte(`{"name":"hold","id":"0123456789abcdef"}`))
	f.Add([]byte(`{"sessionId":"x","state":"CLOSED","session":{"state":"CLOSED"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ev, ok := decodeEvent(data); ok {
			if ev.SessionID == "" || !ev.State.Valid() || !ev.Session.State.Valid() {
				t.Fatalf("took %+v", ev)
			}
			reg := session.NewRegistry(time.Minute)
			reg.Remote("n2", ev)
			reg.ListAll()
			reg.GetAny(ev.SessionID)
			reg.Owner(ev.SessionID)
		}
		if op, ok := decodeOp(data); ok && (op.ID == "" || op.Name == "") {
			t.Fatalf("took %+v", op)
		}
	})
}

// A records query from the bus is checked before it reaches the audit
// database: a known kind, a bounded limit, no negative cursor.
func FuzzDecodeRecordsQuery(f *testing.F) {
	f.Add([]byte(`{"from":"n1","kind":"requests","filter":{"SessionID":"x","Limit":5}}`))
	f.Add([]byte(`{"kind":"calls","filter":{"Limit":-1,"BeforeID":-9}}`))
	f.Add([]byte(`{"kind":"calls","filter":{"Since":"not a time"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, ok := decodeRecordsQuery(data)
		if !ok {
			return
		}
		if (q.Kind != kindRequests && q.Kind != kindCalls) || q.Filter.Limit < 1 || q.Filter.Limit > audit.MaxLimit || q.Filter.BeforeID < 0 {
			t.Fatalf("took %+v", q)
		}
	})
}
