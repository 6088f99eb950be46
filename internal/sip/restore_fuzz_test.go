package sip

import (
	"encoding/json"
	"strings"
	"testing"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// A restored dialog's state comes from the live-call store: another node,
// another version or a hand edit may have written it. Whatever it holds,
// Restore refuses it or gives a leg whose in-dialog requests carry the
// dialog's Call-ID and tags, and whose state reads back as it was given
// (the local CSeq raised by seqMargin).
func FuzzRestoreDialog(f *testing.F) {
	good := Dialog{
		Outbound: true, CallID: "abc@callctl", LocalTag: "l1", RemoteTag: "r1",
		LocalURI: "sip:1001@127.0.0.1", RemoteURI: "sip:2001@127.0.0.1:5060", RemoteTarget: "sip:2001@127.0.0.1:5062;transport=udp",
		RouteSet: []string{"sip:127.0.0.1:5060;lr"}, LocalSeq: 7, RemoteSeq: 3, Transport: "UDP",
		Allow: "INVITE, ACK, BYE", TimerInterval: 1800, TimerRefresher: true,
	}
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"call_id":"x","local_tag":"a","remote_tag":"b","local_uri":"sip:a@h","remote_uri":"sip:b@h","remote_target":"sips:b@h","transport":"tls","sips":true}`))
	f.Add([]byte(`{"call_id":"x y","local_uri":"::::"}`))
	f.Add([]byte(`{"call_id":"x","local_tag":"a","remote_tag":"b\r\nX: y","local_uri":"sip:a@h","remote_uri":"sip:b@h","remote_target":"sip:b@h","transport":"udp"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Dialog
		if json.Unmarshal(data, &d) != nil {
			return
		}
		a := &Agent{log: zap.NewNop(), dialogs: map[string]*Leg{}, outCalls: map[string]*Leg{}, host: "127.0.0.1", port: 5070}
		l, err := a.Restore(d, []byte("v=0\r\n"), nil)
		if err != nil {
			if a.Dialogs() != 0 {
				t.Fatalf("refused dialog %+v left %d registered", d, a.Dialogs())
			}
			return
		}
		got := l.Dialog()
		if got.CallID != d.CallID || got.LocalTag != d.LocalTag || got.RemoteTag != d.RemoteTag || got.LocalSeq != d.LocalSeq+seqMargin {
			t.Fatalf("restored %+v reads back as %+v", d, got)
		}
		l.mu.Lock()
		req := l.newRequestLocked(gosip.BYE, nil)
		l.mu.Unlock()
		msg := req.String()
		if !strings.Contains(msg, "Call-ID: "+d.CallID+"\r\n") || !strings.Contains(msg, "tag="+d.LocalTag) {
			t.Fatalf("BYE of restored dialog %+v:\n%s", d, msg)
		}
		if _, err := gosip.ParseMessage([]byte(msg)); err != nil {
			t.Fatalf("BYE of restored dialog %+v does not parse: %v\n%s", d, err, msg)
		}
		a.unregister(l)
	})
}
