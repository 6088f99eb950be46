package torture

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// callee is the scripted far end callctl's routes point at, on 127.0.0.1
// over one transport. The test reads what callctl sends it (next, expect)
// and answers by hand, so a case can send a broken response before the
// right one.
type callee struct {
	transport string
	addr      string // host:port callctl reaches it at
	in        chan received
	seen      map[string]bool // method + branch of requests already handed out
	closeFns  []func()
	wg        sync.WaitGroup
}

// received is one message callctl sent the callee and the wire to answer on.
type received struct {
	m *message
	w wire
}

// startCallee listens on a fresh port of 127.0.0.1. callctl's address is
// where a UDP callee sends its answers (the Via sent-by of callctl's
// requests); a TCP callee answers on the connection a request came on.
func startCallee(t *testing.T, transport string, callctl func() string) *callee {
	t.Helper()
	c := &callee{transport: transport, in: make(chan received, 64), seen: map[string]bool{}}
	switch transport {
	case "udp":
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c.addr = pc.LocalAddr().String()
		w := &udpWire{c: pc, lazyRemote: callctl}
		c.closeFns = append(c.closeFns, w.Close)
		c.wg.Add(1)
		go c.read(w)
	case "tcp":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addr = ln.Addr().String()
		var mu sync.Mutex
		var conns []net.Conn
		c.closeFns = append(c.closeFns, func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, conn := range conns {
				conn.Close()
			}
		})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
				c.wg.Add(1)
				go c.read(&tcpWire{c: conn, r: bufio.NewReader(conn)})
			}
		}()
	default:
		t.Fatalf("transport %q", transport)
	}
	t.Cleanup(func() {
		for _, f := range c.closeFns {
			f()
		}
		c.wg.Wait()
	})
	return c
}

// read hands every message of w to c.in until w closes.
func (c *callee) read(w wire) {
	defer c.wg.Done()
	for {
		m, err := w.Read(time.Hour)
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return
		}
		select {
		case c.in <- received{m, w}:
		default: // nobody is reading: a test that failed early
		}
	}
}

// expect returns the next request of method that is not a retransmission
// (RFC 3261 17.2.3: same branch and method), discarding anything else; the
// test fails if none comes within timeout.
func (c *callee) expect(t *testing.T, method string, timeout time.Duration) received {
	t.Helper()
	r, ok := c.next(method, timeout)
	if !ok {
		t.Fatalf("the callee got no %s from callctl within %v", method, timeout)
	}
	return r
}

// none checks no new request of method reaches the callee within d.
func (c *callee) none(t *testing.T, method string, d time.Duration) {
	t.Helper()
	if r, ok := c.next(method, d); ok {
		t.Errorf("callctl sent the callee %q; want no %s", r.m.StartLine, method)
	}
}

func (c *callee) next(method string, timeout time.Duration) (received, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case r := <-c.in:
			if r.m.Method != method {
				continue
			}
			key := method + " " + branchOf(r.m.Get("Via"))
			if c.seen[key] {
				continue
			}
			c.seen[key] = true
			return r, true
		case <-deadline.C:
			return received{}, false
		}
	}
}

func branchOf(via string) string {
	for _, p := range strings.Split(via, ";") {
		if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(k, "branch") {
			return v
		}
	}
	return ""
}

// calleeTag is the To tag of every dialog the callee answers.
const calleeTag = "callee-tag"

// response writes the callee's answer to req: the RFC 3261 8.2.6 copies,
// the callee's To tag and Contact, and body (SDP when not empty).
func (c *callee) response(req *message, code int, reason, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range req.Header.Values("Via") {
		b.WriteString("Via: " + v + "\r\n")
	}
	to := req.Get("To")
	if req.Tag("To") == "" {
		to += ";tag=" + calleeTag
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.Get("From"), to, req.Get("Call-Id"), req.Get("CSeq"))
	fmt.Fprintf(&b, "Contact: <sip:callee@%s;transport=%s>\r\n", c.addr, c.transport)
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// calleeSDP is the callee's answer; nothing listens on its port: these
// calls are about signalling.
const calleeSDP = "v=0\r\no=callee 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"

// droppedMetric is the number of messages callctl dropped as malformed
// (callctl_sip_dropped_total, reasons bad_response and unparsable).
func droppedMetric(t *testing.T, cc *callctl) int {
	t.Helper()
	req, err := http.NewRequest("GET", cc.app.APIURL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cc.cfg.Admin.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	n, found := 0, 0
	for _, line := range strings.Split(string(body), "\n") {
		for _, reason := range []string{"bad_response", "unparsable"} {
			if v, ok := strings.CutPrefix(line, `callctl_sip_dropped_total{reason="`+reason+`"} `); ok {
				k, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					t.Fatalf("/metrics line %q", line)
				}
				n += k
				found++
			}
		}
	}
	if found != 2 {
		t.Fatalf("/metrics (%d) lacks callctl_sip_dropped_total for bad_response and unparsable:\n%s", res.StatusCode, body)
	}
	return n
}
