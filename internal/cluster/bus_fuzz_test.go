package cluster

import (
	"encoding/json"
	"testing"
	"time"

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
