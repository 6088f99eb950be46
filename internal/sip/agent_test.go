package sip

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testAgent runs an Agent on a free UDP port of 127.0.0.1 whose inbound legs
// answer 200 at once and report their events on the returned channel.
func testAgent(t *testing.T, allow string) (*Agent, chan Event) {
	t.Helper()
	return testAgentWith(t, Config{
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix(allow)},
	}, zaptest.NewLogger(t))
}

// testAgentWith is testAgent with the rest of the configuration given
// (Listen is always a free port of 127.0.0.1).
func testAgentWith(t *testing.T, cfg Config, log *zap.Logger) (*Agent, chan Event) {
	t.Helper()
	events := make(chan Event, 64)
	var agent *Agent
	cfg.Listen = "127.0.0.1:0"
	agent, err := NewAgent(cfg, log, func(in *Leg) {
		in.SetSink(func(ev Event) { events <- ev })
		in.Respond(200, "OK", []byte("v=0\r\n"))
	})
	if err != nil {
		t.Fatal(err)
	}
	agent.Serve()
	t.Cleanup(func() { agent.Close(); agent.Wait() })
	return agent, events
}

// peer is a plain sipgo client standing in for a PBX. It sends from its own
// listening socket, as the Agent does: a socket sipgo creates for a client is
// reference counted, and after a non-2xx INVITE the count can go negative and
// the socket is never closed (sipgo v1.7.3), which goleak rightly reports.
func peer(t *testing.T) *sipgo.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	c, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(local))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeUDP(conn)
	}()
	for ua.TransportLayer().Pool("udp").Get(local) == nil {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		conn.Close()
		ua.Close()
		<-served
	})
	return c
}

func uri(t *testing.T, s string) gosip.Uri {
	var u gosip.Uri
	if err := gosip.ParseUri(s, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func do(t *testing.T, c *sipgo.Client, req *gosip.Request) *gosip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func TestOptionsIsAnsweredWithAllow(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.0/8")
	res := do(t, peer(t), gosip.NewRequest(gosip.OPTIONS, uri(t, "sip:"+a.Addr())))
	if res.StatusCode != 200 {
		t.Fatalf("got %d, want 200", res.StatusCode)
	}
	if h := res.GetHeader("Allow"); h == nil || h.Value() != allowHeader {
		t.Fatalf("Allow header = %v", h)
	}
}

func TestByeForUnknownDialogGets481(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.0/8")
	req := gosip.NewRequest(gosip.BYE, uri(t, "sip:100@"+a.Addr()))
	req.AppendHeader(&gosip.ToHeader{Address: uri(t, "sip:100@"+a.Addr()), Params: gosip.HeaderParams{{K: "tag", V: "nosuchtag"}}})
	res := do(t, peer(t), req)
	if res.StatusCode != 481 {
		t.Fatalf("got %d, want 481", res.StatusCode)
	}
}

// establish sends an INVITE, takes the 2xx and ACKs it; it returns the
// requests a peer needs to go on in the dialog.
func establish(t *testing.T, a *Agent, c *sipgo.Client, events chan Event) (*gosip.Request, *gosip.Response) {
	t.Helper()
	inv := gosip.NewRequest(gosip.INVITE, uri(t, "sip:100@"+a.Addr()))
	inv.AppendHeader(&gosip.ContactHeader{Address: uri(t, "sip:pbx@127.0.0.1")})
	res := do(t, c, inv)
	if res.StatusCode != 200 {
		t.Fatalf("INVITE got %d", res.StatusCode)
	}
	ack := inDialog(t, inv, res, gosip.ACK, inv.CSeq().SeqNo)
	if err := c.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if _, ok := ev.(*Acked); !ok {
			t.Fatalf("first event %T, want *Acked", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Acked event")
	}
	return inv, res
}

func inDialog(t *testing.T, inv *gosip.Request, res *gosip.Response, m gosip.RequestMethod, seq uint32) *gosip.Request {
	req := gosip.NewRequest(m, res.Contact().Address)
	req.AppendHeader(gosip.HeaderClone(inv.From()))
	req.AppendHeader(gosip.HeaderClone(res.To()))
	req.AppendHeader(gosip.HeaderClone(inv.CallID()))
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: seq, MethodName: m})
	return req
}

func TestInDialogRequestWithStaleCSeqIsRefusedNotDelivered(t *testing.T) {
	a, events := testAgent(t, "127.0.0.0/8")
	c := peer(t)
	inv, res := establish(t, a, c, events)
	base := inv.CSeq().SeqNo

	// CSeq base+5 arrives first and is delivered to the owner.
	go func() {
		ev := <-events
		if r, ok := ev.(*Request); ok {
			r.Respond(200, "OK", nil)
		}
	}()
	if got := do(t, c, inDialog(t, inv, res, gosip.INFO, base+5)); got.StatusCode != 200 {
		t.Fatalf("INFO cseq+5 got %d, want 200", got.StatusCode)
	}
	// A request with a lower CSeq, arriving later, is out of order
	// (RFC 3261 12.2.2): refused by the SIP layer.
	if got := do(t, c, inDialog(t, inv, res, gosip.INFO, base+2)); got.StatusCode != 500 {
		t.Fatalf("INFO with stale CSeq got %d, want 500", got.StatusCode)
	}
	select {
	case ev := <-events:
		t.Fatalf("stale request reached the owner as %T", ev)
	case <-time.After(100 * time.Millisecond):
	}
	// BYE ends the dialog; the owner hears of it and the dialog is gone.
	if got := do(t, c, inDialog(t, inv, res, gosip.BYE, base+6)); got.StatusCode != 200 {
		t.Fatalf("BYE got %d", got.StatusCode)
	}
	if ev := <-events; ev == nil {
		t.Fatal("no event")
	} else if _, ok := ev.(*Bye); !ok {
		t.Fatalf("got %T, want *Bye", ev)
	}
	if a.Dialogs() != 0 {
		t.Fatalf("%d dialogs left after BYE", a.Dialogs())
	}
}

func TestOptionsWhileDrainingGets503WithRetryAfter(t *testing.T) {
	accepting := false
	agent, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Accepting:  func() bool { return accepting },
		RetryAfter: 30,
	}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	agent.Serve()
	t.Cleanup(func() { agent.Close(); agent.Wait() })
	res := do(t, peer(t), gosip.NewRequest(gosip.OPTIONS, uri(t, "sip:"+agent.Addr())))
	if res.StatusCode != 503 {
		t.Fatalf("got %d while draining, want 503", res.StatusCode)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "30" {
		t.Fatalf("Retry-After = %v, want 30", h)
	}
}
