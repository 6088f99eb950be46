package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/listen"
	"go.uber.org/zap/zaptest"
)

// A browser-like listen-in offer: two recvonly audio sections.
const remoteOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n"

// An answer of the owner's, as listen.Manager.Start writes one.
const remoteAnswer = "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
	"m=audio 40000 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 127.0.0.1\r\na=mid:0\r\na=sendonly\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n" +
	"m=audio 40000 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 127.0.0.1\r\na=mid:1\r\na=sendonly\r\n"

// fakeOwner is another node: it records what reaches it and answers
// with result or err.
type fakeOwner struct {
	mu     sync.Mutex
	got    []ForwardedOp
	nodes  []string
	result map[string]string
	err    error
}

func (f *fakeOwner) Forward(_ context.Context, node string, op ForwardedOp) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, op)
	f.nodes = append(f.nodes, node)
	if op.Name == "stopListen" {
		return nil, f.err
	}
	return f.result, f.err
}

func (f *fakeOwner) ops() []ForwardedOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ForwardedOp(nil), f.got...)
}

// remoteEngine is a node that knows session "s-remote", IN_CALL on node-2.
func remoteEngine(t *testing.T, f Forwarder) *Engine {
	reg := NewRegistry(time.Minute)
	lm, err := listen.NewManager(listen.Config{ICEIPs: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lm.Close)
	e := NewEngine(Config{MaxSessions: 1, Listen: lm}, zaptest.NewLogger(t), nil, reg)
	e.SetForwarder(f)
	reg.Remote("node-2", Event{Type: EventStateChanged, SessionID: "s-remote", State: InCall, Time: time.Now(),
		Session: Snapshot{ID: "s-remote", State: InCall, Start: time.Now()}})
	return e
}

// Issue 12: a listen-in on another node's call goes to that node with the
// client's offer and name, and its answer and listen id come back as if
// from here; stopping it goes there too.
func TestListenOnAnotherNodesCallIsForwardedToItsOwner(t *testing.T) {
	f := &fakeOwner{result: map[string]string{"listenId": "00112233aabbccdd", "sdp": remoteAnswer}}
	e := remoteEngine(t, f)
	id, answer, err := e.Listen(context.Background(), "s-remote", "supervisor", remoteOffer)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if id != "00112233aabbccdd" || answer != remoteAnswer {
		t.Errorf("Listen = %q, %q; want the owner's id and answer", id, answer)
	}
	if err := e.StopListen(context.Background(), "s-remote", id); err != nil {
		t.Fatalf("StopListen: %v", err)
	}
	ops := f.ops()
	if len(ops) != 2 || f.nodes[0] != "node-2" || f.nodes[1] != "node-2" {
		t.Fatalf("forwarded %+v to %v; want startListen then stopListen to node-2", ops, f.nodes)
	}
	if o := ops[0]; o.Name != "startListen" || o.ID != "s-remote" || o.Args["sdp"] != remoteOffer || o.Args["client"] != "supervisor" {
		t.Errorf("forwarded %+v; want startListen of s-remote with the offer and the client", o)
	}
	if o := ops[1]; o.Name != "stopListen" || o.ID != "s-remote" || o.Args["listenId"] != id {
		t.Errorf("forwarded %+v; want stopListen of s-remote, listen id %s", o, id)
	}
}

// An offer that cannot be one, or a listen id that cannot be one, is
// refused on the node the client talks to: nothing reaches the owner.
func TestListenInputIsCheckedBeforeItIsForwarded(t *testing.T) {
	f := &fakeOwner{result: map[string]string{"listenId": "00112233aabbccdd", "sdp": remoteAnswer}}
	e := remoteEngine(t, f)
	for name, offer := range map[string]string{
		"empty":       "",
		"not SDP":     "hello",
		"one section": strings.SplitAfter(remoteOffer, "PCMU/8000\r\n")[0],
		"too large":   remoteOffer + strings.Repeat("a=x:"+strings.Repeat("y", 60)+"\r\n", 300),
	} {
		_, _, err := e.Listen(context.Background(), "s-remote", "supervisor", offer)
		var oe *OpError
		if !errors.As(err, &oe) || oe.Code != CodeInvalidArgument || oe.Field != "sdp" {
			t.Errorf("%s offer: %v; want invalid argument naming sdp", name, err)
		}
	}
	for _, bad := range []string{"", "l1", "../../x", "00112233AABBCCDD", strings.Repeat("a", 17)} {
		if err := e.StopListen(context.Background(), "s-remote", bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("StopListen(%q): %v; want not found", bad, err)
		}
	}
	if ops := f.ops(); len(ops) != 0 {
		t.Errorf("forwarded %+v; want nothing", ops)
	}
}

// What the owner answers is checked before the client gets it: no valid
// listen id or no usable SDP is a gateway timeout, and a listener started
// with an unusable answer is stopped on the owner.
func TestAnOwnersUnusableListenAnswerIsRefused(t *testing.T) {
	for name, res := range map[string]map[string]string{
		"no listen id":  {"sdp": remoteAnswer},
		"bad listen id": {"listenId": "<script>", "sdp": remoteAnswer},
		"no sdp":        {"listenId": "00112233aabbccdd"},
		"not sdp":       {"listenId": "00112233aabbccdd", "sdp": "hello"},
	} {
		f := &fakeOwner{result: res}
		e := remoteEngine(t, f)
		if _, _, err := e.Listen(context.Background(), "s-remote", "supervisor", remoteOffer); !errors.Is(err, ErrTimeout) {
			t.Errorf("%s: %v; want a timeout (the owner answered unusably)", name, err)
		}
		ops := f.ops()
		stopped := len(ops) == 2 && ops[1].Name == "stopListen" && ops[1].Args["listenId"] == "00112233aabbccdd"
		if wantStop := res["listenId"] == "00112233aabbccdd"; stopped != wantStop {
			t.Errorf("%s: forwarded %+v; a stop of the started listener: want %v", name, ops, wantStop)
		}
	}
}

// The owner's errors reach the client as they are (a 504 when the owner
// is gone, a 409 for a call on hold it cannot listen to, …); a session
// nobody knows is not found and is not forwarded.
func TestListenErrorsOfTheOwnerAndOfNobody(t *testing.T) {
	gone := &OpError{Code: CodeTimeout, Op: "startListen", Msg: "the node carrying the call (node-2) is gone"}
	f := &fakeOwner{err: gone}
	e := remoteEngine(t, f)
	if _, _, err := e.Listen(context.Background(), "s-remote", "supervisor", remoteOffer); !errors.Is(err, gone) || err.Error() != gone.Error() {
		t.Errorf("Listen with the owner gone: %v; want %v", err, gone)
	}
	if err := e.StopListen(context.Background(), "s-remote", "00112233aabbccdd"); !errors.Is(err, ErrTimeout) {
		t.Errorf("StopListen with the owner gone: %v; want a timeout", err)
	}
	n := len(f.ops())
	if _, _, err := e.Listen(context.Background(), "nobody", "supervisor", remoteOffer); !errors.Is(err, ErrNotFound) {
		t.Errorf("Listen on an unknown session: %v; want not found", err)
	}
	if err := e.StopListen(context.Background(), "nobody", "00112233aabbccdd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("StopListen on an unknown session: %v; want not found", err)
	}
	if len(f.ops()) != n {
		t.Errorf("forwarded %+v for an unknown session", f.ops()[n:])
	}
}

// A listen-in forwarded here runs here or nowhere: if this node does not
// carry the call (it believes another does), it answers not found rather
// than passing the offer on again.
func TestAForwardedListenIsNotForwardedAgain(t *testing.T) {
	f := &fakeOwner{result: map[string]string{"listenId": "00112233aabbccdd", "sdp": remoteAnswer}}
	e := remoteEngine(t, f)
	if _, err := e.Do(context.Background(), ForwardedOp{Name: "startListen", ID: "s-remote", Args: map[string]string{"client": "x", "sdp": remoteOffer}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Do(startListen) of a session this node does not carry: %v; want not found", err)
	}
	if _, err := e.Do(context.Background(), ForwardedOp{Name: "stopListen", ID: "s-remote", Args: map[string]string{"listenId": "00112233aabbccdd"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Do(stopListen) here: %v; want not found", err)
	}
	if ops := f.ops(); len(ops) != 0 {
		t.Errorf("passed on %+v; want nothing", ops)
	}
}
