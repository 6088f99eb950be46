package sip

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callctl/callctl/internal/flood"
)

// rawPeer sends hand-written datagrams from a chosen loopback address (a
// second loopback address plays another host) and reads what comes back.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newRawPeer(t *testing.T, from string, a *Agent) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to, err := net.ResolveUDPAddr("udp4", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, conn: conn, to: to}
}

func (p *rawPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDP([]byte(msg), p.to); err != nil {
		p.t.Fatal(err)
	}
}

// answer reads one response within wait; nil if none came.
func (p *rawPeer) answer(wait time.Duration) *gosip.Response {
	p.t.Helper()
	buf := make([]byte, 65535)
	_ = p.conn.SetReadDeadline(time.Now().Add(wait))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	msg, err := gosip.ParseMessage(buf[:n])
	if err != nil {
		p.t.Fatalf("callctl sent something unparsable: %v\n%s", err, buf[:n])
	}
	res, ok := msg.(*gosip.Response)
	if !ok {
		p.t.Fatalf("callctl sent a request where an answer was expected:\n%s", buf[:n])
	}
	return res
}

var branchSeq atomic.Uint64

// request writes a request from p's address; edit changes its header lines
// (a line "" is dropped) before it is joined.
func (p *rawPeer) request(method, ruri string, edit func(h []string) []string, body string) string {
	local := p.conn.LocalAddr().(*net.UDPAddr)
	n := branchSeq.Add(1)
	h := []string{
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-t%d;rport", local, n),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:1001@%s>;tag=f%d", local.IP, n),
		"To: <" + ruri + ">",
		fmt.Sprintf("Call-ID: c%d@test", n),
		"CSeq: 1 " + method,
		fmt.Sprintf("Contact: <sip:1001@%s>", local),
	}
	if body != "" {
		h = append(h, "Content-Type: application/sdp")
	}
	if edit != nil {
		h = edit(h)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	for _, line := range h {
		if line != "" {
			b.WriteString(line + "\r\n")
		}
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// without drops the header lines starting with prefix.
func without(prefix string) func([]string) []string {
	return func(h []string) []string {
		for i := range h {
			if strings.HasPrefix(h[i], prefix) {
				h[i] = ""
			}
		}
		return h
	}
}

// replacing replaces the header line starting with prefix by line.
func replacing(prefix, line string) func([]string) []string {
	return func(h []string) []string {
		for i := range h {
			if strings.HasPrefix(h[i], prefix) {
				h[i] = line
			}
		}
		return h
	}
}

func adding(lines ...string) func([]string) []string {
	return func(h []string) []string { return append(h, lines...) }
}

const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"

// expectAlive checks the agent still answers an OPTIONS with 200.
func expectAlive(t *testing.T, a *Agent) {
	t.Helper()
	p := newRawPeer(t, "127.0.0.1", a)
	p.send(p.request("OPTIONS", "sip:callctl@"+a.Addr(), nil, ""))
	if res := p.answer(2 * time.Second); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS afterwards: %v, want 200", res)
	}
}

func TestMalformedRequestsGetTheAnswerRFC3261AsksFor(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.0/8")
	ruri := "sip:2001@" + a.Addr()
	tests := []struct {
		name    string
		method  string
		ruri    string
		edit    func([]string) []string
		body    string
		raw     func(string) string // rewrites the whole message
		status  int
		mention string // in the Warning, or the named header's value
		header  string // the header that must carry mention
	}{
		{name: "no To", edit: without("To:"), status: 400, mention: "To", header: "Warning"},
		{name: "no From", edit: without("From:"), status: 400, mention: "From", header: "Warning"},
		{name: "no Call-ID", edit: without("Call-ID:"), status: 400, mention: "Call-ID", header: "Warning"},
		{name: "no CSeq", edit: without("CSeq:"), status: 400, mention: "CSeq", header: "Warning"},
		{name: "no Via", edit: without("Via:"), status: 400, mention: "Via", header: "Warning"},
		{name: "no Max-Forwards", edit: without("Max-Forwards:"), status: 400, mention: "Max-Forwards", header: "Warning"},
		{name: "To twice", edit: adding("To: <sip:2002@example.com>"), status: 400, mention: "To", header: "Warning"},
		{name: "Call-ID twice in compact form", edit: adding("i: other@test"), status: 400, mention: "Call-ID", header: "Warning"},
		{name: "CSeq method differs", edit: replacing("CSeq:", "CSeq: 1 OPTIONS"), status: 400, mention: "CSeq", header: "Warning"},
		{name: "CSeq not a number", edit: replacing("CSeq:", "CSeq: one INVITE"), status: 400, mention: "CSeq", header: "Warning"},
		{name: "CSeq above 2**31", edit: replacing("CSeq:", "CSeq: 4294967295 INVITE"), status: 400, mention: "CSeq", header: "Warning"},
		{name: "To without a URI", edit: replacing("To:", "To: garbage"), status: 400, mention: "To", header: "Warning"},
		{name: "Content-Length larger than the body", body: testSDP,
			raw: func(m string) string {
				return strings.Replace(m, fmt.Sprintf("Content-Length: %d", len(testSDP)), "Content-Length: 9999", 1)
			}, status: 400, mention: "Content-Length", header: "Warning"},
		{name: "version SIP/3.0", raw: func(m string) string { return strings.Replace(m, " SIP/2.0\r\n", " SIP/3.0\r\n", 1) }, status: 505},
		{name: "tel: Request-URI", ruri: "tel:+12125551212", status: 416},
		{name: "sips: Request-URI", ruri: "sips:2001@example.com", status: 416},
		{name: "unknown scheme", ruri: "nosuchscheme:2001@example.com", status: 416},
		{name: "Require unknown", edit: adding("Require: nothingsupported, 100rel"), status: 420, mention: "nothingsupported", header: "Unsupported"},
		{name: "body type not SDP", body: "hello", edit: replacing("Content-Type:", "Content-Type: text/plain"), status: 415, mention: "application/sdp", header: "Accept"},
		{name: "body without Content-Type", body: testSDP, edit: without("Content-Type:"), status: 400, mention: "Content-Type", header: "Warning"},
		{name: "unknown method", method: "FOO", status: 405, mention: "INVITE", header: "Allow"},
		// RFC 3261 7.1: method names are case-sensitive.
		{name: "Invite is not INVITE", method: "Invite", status: 405, mention: "INVITE", header: "Allow"},
		{name: "OPTIONS with a text/plain body", method: "OPTIONS", body: "hello", edit: replacing("Content-Type:", "Content-Type: text/plain"), status: 415, mention: "application/sdp", header: "Accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRawPeer(t, "127.0.0.1", a)
			method, u := tt.method, tt.ruri
			if method == "" {
				method = "INVITE"
			}
			if u == "" {
				u = ruri
			}
			msg := p.request(method, u, tt.edit, tt.body)
			if tt.raw != nil {
				msg = tt.raw(msg)
			}
			p.send(msg)
			res := p.answer(2 * time.Second)
			if res == nil {
				t.Fatalf("no answer, want %d", tt.status)
			}
			if res.StatusCode != tt.status {
				t.Fatalf("answer %d %s (Warning %v), want %d", res.StatusCode, res.Reason, res.GetHeader("Warning"), tt.status)
			}
			if res.SipVersion != "SIP/2.0" {
				t.Errorf("answered in %q, want SIP/2.0", res.SipVersion)
			}
			if tt.header != "" {
				h := res.GetHeader(tt.header)
				if h == nil || !strings.Contains(h.Value(), tt.mention) {
					t.Errorf("%s: %v, want it to mention %q", tt.header, h, tt.mention)
				}
			}
			if p.answer(700*time.Millisecond) != nil {
				t.Error("the refusal was sent more than once (stateless answers are never retransmitted)")
			}
		})
	}
	if n := a.Dialogs(); n != 0 {
		t.Errorf("%d dialogs left by refused requests", n)
	}
	expectAlive(t, a)
}

func TestValidOdditiesAreAccepted(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.0/8")
	p := newRawPeer(t, "127.0.0.1", a)
	ruri := "sip:callctl@" + a.Addr()
	compact := func(h []string) []string {
		for i, line := range h {
			for long, short := range map[string]string{"Via:": "v:", "From:": "f:", "To:": "t:", "Call-ID:": "i:", "Contact:": "m:"} {
				if strings.HasPrefix(line, long) {
					h[i] = short + strings.TrimPrefix(line, long)
				}
			}
		}
		return h
	}
	// RFC 3261 18.3: on UDP, bytes past Content-Length are discarded.
	trailing := p.request("OPTIONS", ruri, nil, "") + "garbage past the body"
	for name, msg := range map[string]string{
		"compact headers":           p.request("OPTIONS", ruri, compact, ""),
		"lower-case header names":   strings.Replace(p.request("OPTIONS", ruri, nil, ""), "Max-Forwards:", "max-forwards:", 1),
		"bytes past Content-Length": trailing,
		"unknown header":            p.request("OPTIONS", ruri, adding("X-Anything: at all"), ""),
		"folded header value":       p.request("OPTIONS", ruri, adding("Subject: first\r\n  second"), ""),
	} {
		t.Run(name, func(t *testing.T) {
			p.send(msg)
			if res := p.answer(2 * time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("answer %v, want 200", res)
			}
		})
	}
}

func TestGarbageGetsNoAnswerAndIsCountedNotLoggedPerPacket(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	a, _ := testAgentWith(t, Config{
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, zap.New(core))
	p := newRawPeer(t, "127.0.0.1", a)
	for i := range 100 {
		p.send(fmt.Sprintf("\x16\x03\x01 not SIP at all %d \xff\xfe", i))
	}
	p.send("INVITE\r\n\r\n")
	if res := p.answer(500 * time.Millisecond); res != nil {
		t.Fatalf("garbage was answered: %d", res.StatusCode)
	}
	expectAlive(t, a)
	if got := a.Dropped()["unparsable"]; got != 101 {
		t.Errorf("unparsable counted %d, want 101", got)
	}
	a.summary.Flush()
	lines := logs.All()
	summaries := 0
	for _, l := range lines {
		if l.Level >= zapcore.ErrorLevel {
			t.Errorf("garbage logged at %v: %s %v", l.Level, l.Message, l.Context)
		}
		for _, f := range l.Context {
			if strings.Contains(f.String, "not SIP") {
				t.Errorf("the log echoes the sender's bytes: %s %v", l.Message, l.Context)
			}
		}
		if l.Message == "security: SIP traffic shed" {
			summaries++
			if c := l.ContextMap()["count"]; c != uint64(101) {
				t.Errorf("summary count %v, want 101", c)
			}
		}
	}
	if summaries != 1 {
		t.Errorf("%d summary lines for 101 garbage datagrams from one source, want 1", summaries)
	}
}

func TestRefusedSourceIsDroppedWithoutAnswerOrState(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.1/32")
	p := newRawPeer(t, "127.0.0.2", a)
	p.send(p.request("INVITE", "sip:2001@"+a.Addr(), nil, testSDP))
	p.send(p.request("OPTIONS", "sip:2001@"+a.Addr(), nil, ""))
	if res := p.answer(time.Second); res != nil {
		t.Fatalf("a refused source got an answer: %d", res.StatusCode)
	}
	if got := a.Dropped()["refused"]; got != 2 {
		t.Errorf("refused counted %d, want 2", got)
	}
	if a.Refused() != 2 {
		t.Errorf("Refused() = %d, want 2", a.Refused())
	}
	if a.Dialogs() != 0 {
		t.Errorf("%d dialogs for a refused source", a.Dialogs())
	}
}

func TestRefusedSourceGetsOneStateless403WhenConfigured(t *testing.T) {
	a, _ := testAgentWith(t, Config{
		Transports:    []string{"udp"},
		Allow:         []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		RefuseWith403: true,
	}, zaptest.NewLogger(t))
	p := newRawPeer(t, "127.0.0.2", a)
	p.send(p.request("INVITE", "sip:2001@"+a.Addr(), nil, testSDP))
	res := p.answer(2 * time.Second)
	if res == nil || res.StatusCode != 403 {
		t.Fatalf("answer %v, want 403", res)
	}
	// An INVITE transaction would retransmit its 403 at 500 ms, 1.5 s, …
	// (RFC 3261 17.2.1): a stateless answer never does.
	if again := p.answer(1600 * time.Millisecond); again != nil {
		t.Fatalf("the 403 came again (%d): it was retransmitted", again.StatusCode)
	}
}

func TestFloodFromOneSourceIsShedThenBlockedWhileOthersAreServed(t *testing.T) {
	a, _ := testAgentWith(t, Config{
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Flood:      flood.Config{Rate: 20, Burst: 10, BlockAfter: time.Second, BlockFor: time.Minute},
	}, zaptest.NewLogger(t))
	flooder := newRawPeer(t, "127.0.0.3", a)
	answered := make(chan int, 1)
	go func() {
		n := 0
		for flooder.answer(500*time.Millisecond) != nil {
			n++
		}
		answered <- n
	}()
	start := time.Now()
	sent := 0
	for time.Since(start) < 1500*time.Millisecond {
		flooder.send(flooder.request("OPTIONS", "sip:x@"+a.Addr(), nil, ""))
		sent++
		time.Sleep(2 * time.Millisecond)
	}
	n := <-answered
	// 10 at once, then 20/s until blocked after a second of excess.
	if n > 10+20*2 || n < 10 {
		t.Errorf("%d of %d flood requests answered, want the burst and the rate only (10 to 50)", n, sent)
	}
	d := a.Dropped()
	if d["rate_limited"] == 0 || d["blocked"] == 0 {
		t.Errorf("dropped %v: want rate_limited and blocked counted", d)
	}
	if !a.limiter.IsBlocked(netip.MustParseAddr("127.0.0.3")) {
		t.Error("the flooding source is not blocked")
	}
	expectAlive(t, a) // 127.0.0.1 is another source
}

func TestScannerUserAgentsAreDropped(t *testing.T) {
	a, _ := testAgentWith(t, Config{
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Scanners:   []string{"friendly-scanner", "sipvicious"},
	}, zaptest.NewLogger(t))
	p := newRawPeer(t, "127.0.0.1", a)
	p.send(p.request("OPTIONS", "sip:100@"+a.Addr(), adding("User-Agent: Friendly-Scanner 1.0"), ""))
	if res := p.answer(time.Second); res != nil {
		t.Fatalf("a scanner got an answer: %d", res.StatusCode)
	}
	if a.Dropped()["scanner"] != 1 {
		t.Errorf("scanner counted %d, want 1", a.Dropped()["scanner"])
	}
	p.send(p.request("OPTIONS", "sip:100@"+a.Addr(), adding("User-Agent: Asterisk PBX 22"), ""))
	if res := p.answer(2 * time.Second); res == nil || res.StatusCode != 200 {
		t.Fatalf("a PBX's OPTIONS: %v, want 200", res)
	}
}

func TestInviteWithMaxForwardsOneGets483(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.0/8")
	for _, mf := range []string{"0", "1"} {
		p := newRawPeer(t, "127.0.0.1", a)
		p.send(p.request("INVITE", "sip:2001@"+a.Addr(), replacing("Max-Forwards:", "Max-Forwards: "+mf), testSDP))
		res := p.answer(2 * time.Second)
		if res == nil || res.StatusCode != 483 {
			t.Fatalf("Max-Forwards %s: %v, want 483", mf, res)
		}
	}
	if a.Dialogs() != 0 {
		t.Errorf("%d dialogs left", a.Dialogs())
	}
}

func TestHandlerPanicIsRecoveredAndAnswered500(t *testing.T) {
	agent, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, zaptest.NewLogger(t), func(in *Leg) { panic("a handler bug") })
	if err != nil {
		t.Fatal(err)
	}
	agent.Serve()
	t.Cleanup(func() { agent.Close(); agent.Wait() })
	p := newRawPeer(t, "127.0.0.1", agent)
	p.send(p.request("INVITE", "sip:2001@"+agent.Addr(), nil, testSDP))
	var final *gosip.Response
	for res := p.answer(2 * time.Second); res != nil; res = p.answer(time.Second) {
		if res.StatusCode >= 200 {
			final = res
			break
		}
	}
	if final == nil || final.StatusCode != 500 {
		t.Fatalf("final answer %v, want 500", final)
	}
	if agent.Panics() != 1 {
		t.Errorf("Panics() = %d, want 1", agent.Panics())
	}
	expectAlive(t, agent)
}

func TestMalformedResponseIsDroppedAndTheCallGoesOn(t *testing.T) {
	a, _ := testAgent(t, "127.0.0.0/8")
	callee := newRawPeer(t, "127.0.0.1", a)
	target := uri(t, "sip:2001@"+callee.conn.LocalAddr().String())
	events := make(chan Event, 16)
	leg, err := a.Dial(DialOptions{Target: target, FromUser: "1001", Body: []byte(testSDP)}, func(ev Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	buf := make([]byte, 65535)
	_ = callee.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := callee.conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no INVITE: %v", err)
	}
	msg, err := gosip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	inv := msg.(*gosip.Request)
	answer := func(drop string) string {
		res := gosip.NewResponseFromRequest(inv, 200, "OK", nil)
		res.To().Params.Add("tag", "callee")
		out := res.String()
		if drop != "" {
			var kept []string
			for _, line := range strings.Split(out, "\r\n") {
				if !strings.HasPrefix(line, drop) {
					kept = append(kept, line)
				}
			}
			out = strings.Join(kept, "\r\n")
		}
		return out
	}
	// A 200 without To, then one whose CSeq names another method: both
	// dropped, counted, and the leg is not answered by them.
	for _, bad := range []string{answer("To:"), strings.Replace(answer(""), " INVITE\r\n", " BYE\r\n", 1)} {
		if _, err := callee.conn.WriteToUDP([]byte(bad), from); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ev := <-events:
		t.Fatalf("a malformed 200 reached the leg's owner as %T", ev)
	case <-time.After(300 * time.Millisecond):
	}
	// The To-less one is callctl's to drop; the other matches no client
	// transaction (its key has the CSeq method, RFC 3261 17.1.3), so sipgo
	// never hands it to the leg.
	if got := a.Dropped()["bad_response"]; got != 1 {
		t.Errorf("bad_response counted %d, want 1", got)
	}
	if _, err := callee.conn.WriteToUDP([]byte(answer("")), from); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if _, ok := ev.(*Answered); !ok {
			t.Fatalf("after the good 200: %T, want *Answered", ev)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the good 200 that followed did not answer the leg")
	}
}
