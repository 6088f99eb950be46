package cluster

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/callctl/callctl/internal/session"
)

func opJSON(t *testing.T, op session.ForwardedOp) []byte {
	data, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The owner reads a forwarded listen-in as the node the client talked to
// did: an offer that cannot be one, a listen id that is not one, or a
// message beyond the bound is refused, and the refusal says why.
func TestAForwardedListenInIsCheckedAgainOnTheOwner(t *testing.T) {
	const id = "0123456789abcdef"
	for _, c := range []struct {
		name string
		data []byte
		want string // in the error; "" for taken
	}{
		{"an offer", opJSON(t, session.ForwardedOp{Name: "startListen", ID: id, Args: map[string]string{"client": "sup", "sdp": listenOffer}}), ""},
		{"no offer", opJSON(t, session.ForwardedOp{Name: "startListen", ID: id, Args: map[string]string{"client": "sup"}}), "0 audio sections"},
		{"one section", opJSON(t, session.ForwardedOp{Name: "startListen", ID: id, Args: map[string]string{"client": "sup", "sdp": strings.SplitAfter(listenOffer, "PCMA/8000\r\n")[0]}}), "1 audio sections"},
		{"too large", opJSON(t, session.ForwardedOp{Name: "startListen", ID: id, Args: map[string]string{"client": "sup", "sdp": listenOffer + strings.Repeat("a=x\r\n", 4000)}}), "at most 16384"},
		{"no client", opJSON(t, session.ForwardedOp{Name: "startListen", ID: id, Args: map[string]string{"sdp": listenOffer}}), "client name of 0 bytes"},
		{"a long client", opJSON(t, session.ForwardedOp{Name: "startListen", ID: id, Args: map[string]string{"client": strings.Repeat("c", 2000), "sdp": listenOffer}}), "client name of 2000 bytes"},
		{"beyond the bound", opJSON(t, session.ForwardedOp{Name: "hold", ID: id, Args: map[string]string{"pad": strings.Repeat("x", maxOpMessage)}}), "at most"},
		{"a listen id", opJSON(t, session.ForwardedOp{Name: "stopListen", ID: id, Args: map[string]string{"listenId": "00112233aabbccdd"}}), ""},
		{"a bad listen id", opJSON(t, session.ForwardedOp{Name: "stopListen", ID: id, Args: map[string]string{"listenId": "../x"}}), "valid listenId"},
		{"no session", opJSON(t, session.ForwardedOp{Name: "hold"}), "without name or session id"},
		{"not JSON", []byte("{"), "unreadable"},
	} {
		_, err := decodeOp(c.data)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.want)
		}
	}
}

// The node the client talked to reads the owner's reply as input too: an
// error of a code the API does not know, or a reply beyond the bound, is
// unreadable; a result is taken as it is.
func TestAnOwnersReplyIsReadAsInput(t *testing.T) {
	if r, ok := decodeOpReply([]byte(`{"result":{"listenId":"00112233aabbccdd","sdp":"v=0"}}`)); !ok || r.Result["listenId"] != "00112233aabbccdd" {
		t.Errorf("a result: %+v, %v", r, ok)
	}
	if r, ok := decodeOpReply([]byte(`{"error":{"code":"wrong_state","op":"startListen","msg":"the call ended"}}`)); !ok || r.Error.Code != session.CodeWrongState {
		t.Errorf("an error: %+v, %v", r, ok)
	}
	for name, data := range map[string][]byte{
		"unknown code": []byte(`{"error":{"code":"teapot","msg":"?"}}`),
		"not JSON":     []byte(`{"result":`),
		"too large":    []byte(`{"result":{"sdp":"` + strings.Repeat("x", maxOpMessage) + `"}}`),
	} {
		if r, ok := decodeOpReply(data); ok {
			t.Errorf("%s: took %+v", name, r)
		}
	}
}
