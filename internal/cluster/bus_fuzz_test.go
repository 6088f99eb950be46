package cluster

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/listen"
	"github.com/callctl/callctl/internal/session"
)

// listenOffer is a browser-like offer: two recvonly audio sections.
const listenOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"

// Whatever another node (or anyone on the NATS system) publishes, reading
// it never panics, an event taken names a session in valid states, and it
// lands in a registry without panicking either; a list of a node's
// sessions taken names the node and holds only live sessions; a forwarded
// operation taken has a name and a session, and a listen-in's offer or
// listen id in it passed the same checks as on the node the client talked
// to; a reply taken is within bounds and any error in it has a code the
// API knows.
func FuzzBusMessages(f *testing.F) {
	ev, _ := json.Marshal(session.Event{Seq: 1, Type: session.EventStateChanged, SessionID: "0123456789abcdef", State: session.InCall,
		Session: session.Snapshot{ID: "0123456789abcdef", State: session.InCall}})
	f.Add(ev)
	f.Add([]byte(`{"name":"hold","id":"0123456789abcdef"}`))
	f.Add([]byte(`{"sessionId":"x","state":"CLOSED","session":{"state":"CLOSED"}}`))
	f.Add([]byte(`null`))
	start, _ := json.Marshal(session.ForwardedOp{Name: "startListen", ID: "0123456789abcdef", Args: map[string]string{"client": "sup", "sdp": listenOffer}})
	f.Add(start)
	f.Add([]byte(`{"name":"stopListen","id":"0123456789abcdef","args":{"listenId":"00112233aabbccdd"}}`))
	f.Add([]byte(`{"result":{"listenId":"00112233aabbccdd","sdp":"v=0\r\n"}}`))
	f.Add([]byte(`{"error":{"code":"not_found","op":"stopListen","msg":"no listener"}}`))
	f.Add([]byte(`{"error":{"code":"teapot","msg":"?"}}`))
	f.Add([]byte(`{"node":"n2","sessions":[{"id":"0123456789abcdef","state":"IN_CALL"},{"id":"","state":"IN_CALL"},{"id":"x","state":"HUNG_UP"}]}`))
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
		if r, ok := decodeSessions(data); ok {
			if r.Node == "" {
				t.Fatalf("took sessions of no node: %+v", r)
			}
			reg := session.NewRegistry(time.Minute)
			for _, snap := range r.Sessions {
				if snap.ID == "" || !snap.State.Valid() || snap.State.Ended() {
					t.Fatalf("took %+v", snap)
				}
				reg.Known(r.Node, snap)
			}
			reg.ListAll()
		}
		if op, err := decodeOp(data); err == nil {
			if op.ID == "" || op.Name == "" || len(data) > maxOpMessage {
				t.Fatalf("took %+v", op)
			}
			if op.Name == "startListen" && (listen.CheckOffer(op.Args["sdp"]) != nil || op.Args["client"] == "" || len(op.Args["client"]) > maxClientName) {
				t.Fatalf("took a listen-in offer the client's node would refuse: %q", op.Args["sdp"])
			}
			if op.Name == "stopListen" && !listen.ValidID(op.Args["listenId"]) {
				t.Fatalf("took stopListen of listen id %q", op.Args["listenId"])
			}
		}
		if r, ok := decodeOpReply(data); ok {
			if len(data) > maxOpMessage {
				t.Fatalf("took a %d-byte reply", len(data))
			}
			if r.Error != nil && fromCode(r.Error.Code) == "" {
				t.Fatalf("took an error of code %q", r.Error.Code)
			}
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

// fromCode names the codes the API maps to a status (internal/api).
func fromCode(c session.Code) string {
	switch c {
	case session.CodeInvalidArgument, session.CodeWrongState, session.CodeNotFound, session.CodePeerRefused, session.CodeTimeout:
		return string(c)
	}
	return ""
}
