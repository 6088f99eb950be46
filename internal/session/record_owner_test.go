package session

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/callctl/callctl/internal/sip"
)

// ownerByUnmarshal is what RecordOwner answered before it stopped reading
// at the owner: the whole record decoded.
func ownerByUnmarshal(value []byte) string {
	var r struct {
		Node string `json:"node"`
	}
	if json.Unmarshal(value, &r) != nil {
		return ""
	}
	return r.Node
}

// aRecord is a record as a session writes it: SDPs and dialogs included,
// the size the watchers read at every write.
func aRecord(t testing.TB, node string) []byte {
	sdp := strings.Repeat("a=rtpmap:0 PCMU/8000\r\n", 12)
	r := record{Format: recordFormat, Node: node, ID: "0123456789abcdef", State: InCall,
		Caller: Party{Number: "1001"}, Callee: Party{Number: "2002"}, Dialled: "2002",
		Legs: [2]sip.Dialog{{CallID: "a@x"}, {CallID: "b@y"}},
		From: [2]string{sdp, sdp}, To: [2]string{sdp, sdp}, Ports: [2]int{20000, 20002}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordOwnerNamesTheNodeOfTheRecord(t *testing.T) {
	cases := []struct {
		name, value, want string
	}{
		{"a session's record", string(aRecord(t, "node-7")), "node-7"},
		{"node first", `{"node":"n2","format":1}`, "n2"},
		{"node after nested values", `{"legs":[{"x":[1,2,{"node":"inner"}]}],"node":"outer"}`, "outer"},
		{"key case folded as json.Unmarshal does", `{"format":1,"NODE":"n3"}`, "n3"},
		{"escaped key", `{"no\u0064e":"n4"}`, "n4"},
		{"no node", `{"format":1,"id":"x"}`, ""},
		{"node not a string", `{"node":12}`, ""},
		{"node null", `{"node":null}`, ""},
		{"not an object", `["node","n5"]`, ""},
		{"not JSON", `node: n6`, ""},
		{"empty", ``, ""},
		{"cut before the owner", `{"format":1,"no`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RecordOwner([]byte(c.value)); got != c.want {
				t.Fatalf("RecordOwner(%q) = %q, want %q", c.value, got, c.want)
			}
		})
	}
}

// FuzzRecordOwner: any bytes (a record from the store is input), no panic;
// on valid JSON with one key that is "node" under case folding, the same
// answer as decoding the whole record.
func FuzzRecordOwner(f *testing.F) {
	f.Add(aRecord(f, "n1"))
	f.Add([]byte(`{"node":"n2"}`))
	f.Add([]byte(`{"Node":1,"node":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := RecordOwner(data)
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return
		}
		n := 0
		for k := range m {
			if strings.EqualFold(k, "node") {
				n++
			}
		}
		// Duplicate keys collapse in m: count the raw ones too.
		if n == 1 && strings.Count(strings.ToLower(string(data)), `"node"`) <= 1 {
			if want := ownerByUnmarshal(data); got != want {
				t.Fatalf("RecordOwner(%q) = %q; decoding the whole record says %q", data, got, want)
			}
		}
	})
}

func BenchmarkRecordOwner(b *testing.B) {
	v := aRecord(b, "node-7")
	b.Run("first keys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if RecordOwner(v) != "node-7" {
				b.Fatal("wrong owner")
			}
		}
	})
	b.Run("whole record (before)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ownerByUnmarshal(v) != "node-7" {
				b.Fatal("wrong owner")
			}
		}
	})
}
