package session

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A record read from the live-call store is input: decodeRecord takes any
// bytes without panicking, and a record it accepts survives a round trip
// through JSON unchanged and is in a live state with both parties' SDP.
func FuzzDecodeRecord(f *testing.F) {
	const key = "0123456789abcdef"
	r := record{Format: recordFormat, Node: "n1", ID: key, State: InCall,
		From: [2]string{"v=0\r\n", "v=0\r\n"}, To: [2]string{"v=0\r\n", "v=0\r\n"}}
	b, _ := json.Marshal(r)
	f.Add(b)
	f.Add([]byte(`{"format":1,"id":"0123456789abcdef","state":"CLOSED"}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeRecord(key, data)
		if err != nil {
			return
		}
		if !rec.State.Valid() || rec.State.Ended() || rec.ID != key {
			t.Fatalf("accepted a record in state %q with id %q", rec.State, rec.ID)
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRecord(key, again)
		if err != nil || !reflect.DeepEqual(back, rec) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, rec)
		}
	})
}
