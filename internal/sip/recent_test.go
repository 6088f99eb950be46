package sip

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap/zaptest"
)

// TestRetransmissionsOfEndedTransactionsAreStillAnswered: callctl ends an
// INVITE's server transaction at its 2xx and a BYE's at its 200, instead
// of keeping them 32 s (recent.go); a retransmitted INVITE must still be
// absorbed (RFC 6026 7.1), not become a second call, and a retransmitted
// BYE must get its 200 again (RFC 3261 17.2.2), not a 481.
func TestRetransmissionsOfEndedTransactionsAreStillAnswered(t *testing.T) {
	var invites atomic.Int32
	events := make(chan Event, 64)
	a, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, zaptest.NewLogger(t), func(in *Leg) {
		invites.Add(1)
		in.SetSink(func(ev Event) { events <- ev })
		in.Respond(200, "OK", []byte(testSDP))
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Serve()
	t.Cleanup(func() { a.Close(); a.Wait() })
	p := newRawPeer(t, "127.0.0.1", a)
	ruri := "sip:100@" + a.Addr()
	inv := p.request("INVITE", ruri, nil, testSDP)
	p.send(inv)
	ok := p.answer(2 * time.Second)
	if ok == nil || ok.StatusCode != 200 {
		t.Fatalf("INVITE got %v, want 200", ok)
	}
	tag, _ := ok.To().Params.Get("tag")

	// The 200 was lost, say: the INVITE comes again, twice.
	p.send(inv)
	p.send(inv)
	for res := p.answer(700 * time.Millisecond); res != nil; res = p.answer(700 * time.Millisecond) {
		if got, _ := res.To().Params.Get("tag"); res.StatusCode != 200 || got != tag {
			t.Fatalf("retransmitted INVITE got %d (To tag %q), want nothing or the 2xx retransmitted (tag %q)", res.StatusCode, got, tag)
		}
	}
	if n := invites.Load(); n != 1 {
		t.Fatalf("%d calls from one INVITE and its retransmissions, want 1", n)
	}

	// ACK, BYE, and the BYE again.
	dialog := func(method string, seq int) string {
		return p.request(method, ruri, func(h []string) []string {
			for i, l := range h {
				switch {
				case strings.HasPrefix(l, "From:"):
					h[i] = "From: " + header(inv, "From")
				case strings.HasPrefix(l, "To:"):
					h[i] = "To: <" + ruri + ">;tag=" + tag
				case strings.HasPrefix(l, "Call-ID:"):
					h[i] = "Call-ID: " + header(inv, "Call-ID")
				case strings.HasPrefix(l, "CSeq:"):
					h[i] = fmt.Sprintf("CSeq: %d %s", seq, method)
				}
			}
			return h
		}, "")
	}
	p.send(dialog("ACK", 1))
	bye := dialog("BYE", 2)
	for i := range 2 {
		p.send(bye)
		res := p.answer(2 * time.Second)
		for res != nil && res.CSeq().MethodName != gosip.BYE {
			res = p.answer(2 * time.Second) // a late 2xx retransmission
		}
		if res == nil || res.StatusCode != 200 {
			t.Fatalf("BYE (sent %d times) got %v, want 200", i+1, res)
		}
	}
	if a.Dialogs() != 0 {
		t.Fatalf("%d dialogs left after BYE", a.Dialogs())
	}
}

// header is the value of the first header name in a hand-written message.
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestAnsweredRecordsExpireAndAreBounded(t *testing.T) {
	r := newAnswered()
	req := func(branch string) *gosip.Request {
		m, err := gosip.ParseMessage([]byte("BYE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK" + branch +
			"\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return m.(*gosip.Request)
	}
	r.add(req("one"), 200)
	if s, ok := r.status(req("one")); !ok || s != 200 {
		t.Fatalf("status = %d, %v; want 200, true", s, ok)
	}
	if _, ok := r.status(req("two")); ok {
		t.Fatal("an unrecorded transaction was found")
	}
	// Expired: pretend 64*T1 passed.
	r.mu.Lock()
	for k, a := range r.m {
		a.expires = time.Now().Add(-time.Second).UnixNano()
		r.m[k] = a
		r.order[0].expires = a.expires
	}
	r.mu.Unlock()
	if _, ok := r.status(req("one")); ok {
		t.Fatal("an expired record was found")
	}
	r.add(req("three"), 200) // sweeps the expired one
	if len(r.m) != 1 || len(r.order) != 1 {
		t.Fatalf("%d records, %d in order after the sweep; want 1, 1", len(r.m), len(r.order))
	}
	for i := range maxAnswered + 10 {
		r.add(req(fmt.Sprint("b", i)), 200)
	}
	if len(r.m) > maxAnswered || len(r.order) > maxAnswered {
		t.Fatalf("%d records (%d in order), want at most %d", len(r.m), len(r.order), maxAnswered)
	}
}
