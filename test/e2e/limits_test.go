package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// rawSIP is a hand-driven SIP endpoint on a UDP socket of a loopback
// address: it writes requests and answers exactly as a test says, so
// limits can be checked message by message.
type rawSIP struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawSIP(t *testing.T, ip string, port int) *rawSIP {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawSIP{t: t, conn: conn}
}

func (r *rawSIP) addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

func (r *rawSIP) sendTo(to string, msg string) {
	r.t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.conn.WriteToUDP([]byte(msg), ua); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next datagram within wait, and where it came from; ""
// if none came.
func (r *rawSIP) read(wait time.Duration) (string, *net.UDPAddr) {
	buf := make([]byte, 65535)
	_ = r.conn.SetReadDeadline(time.Now().Add(wait))
	n, from, err := r.conn.ReadFromUDP(buf)
	if err != nil {
		return "", nil
	}
	return string(buf[:n]), from
}

var rawSeq atomic.Int64

// invite is an INVITE with an SDP offer from r to callee at callctl.
func (r *rawSIP) invite(callctl, callee string, maxForwards int) string {
	n := rawSeq.Add(1)
	a := r.addr()
	sdp := fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", n, a.IP, a.IP, 40000+2*(n%1000))
	return fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-raw%d;rport\r\n"+
		"Max-Forwards: %d\r\n"+
		"From: <sip:1001@%s>;tag=raw%d\r\n"+
		"To: <sip:%s@%s>\r\n"+
		"Call-ID: raw%d@%s\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:1001@%s>\r\n"+
		"Content-Type: application/sdp\r\n"+
		"Content-Length: %d\r\n\r\n%s",
		callee, callctl, a, n, maxForwards, a.IP, n, callee, callctl, n, a.IP, a, len(sdp), sdp)
}

// refusals reads until quiet for wait and counts the calls answered 503
// (once each: a 503 to an INVITE is retransmitted until ACKed).
func (r *rawSIP) refusals(wait time.Duration) int {
	calls := map[string]bool{}
	for {
		msg, _ := r.read(wait)
		if msg == "" {
			return len(calls)
		}
		if status(msg) == 503 {
			calls[header(msg, "Call-ID")] = true
		}
	}
}

// header returns the value of a message's first header name.
func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// status returns a response's status code, 0 for a request.
func status(msg string) int {
	if !strings.HasPrefix(msg, "SIP/2.0 ") {
		return 0
	}
	code, _ := strconv.Atoi(strings.Fields(msg)[1])
	return code
}

// answer makes a response to request req with status, echoing its
// Via, From, To (with a tag), Call-ID and CSeq (RFC 3261 8.2.6).
func answer(req string, code int, reason string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, line := range strings.Split(req, "\r\n") {
		k, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "from", "call-id", "cseq":
			b.WriteString(line + "\r\n")
		case "to":
			b.WriteString(line + ";tag=pbx" + strconv.Itoa(code) + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// pbx stands in for the PBX callctl sends B legs to: it records the
// INVITEs it gets and answers each with ringing (180) only, so every call
// admitted stays live; it ACKs nothing and answers CANCEL and BYE 200.
type pbx struct {
	*rawSIP
	mu      sync.Mutex
	invites []string
	stop    chan struct{}
	done    chan struct{}
}

func startPBX(t *testing.T) *pbx {
	t.Helper()
	p := &pbx{rawSIP: newRawSIP(t, "127.0.0.1", peers.FreeUDPPort(t)), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			msg, from := p.read(200 * time.Millisecond)
			if from == nil || status(msg) != 0 || len(strings.Fields(msg)) == 0 {
				continue
			}
			switch strings.Fields(msg)[0] {
			case "INVITE":
				p.mu.Lock()
				p.invites = append(p.invites, msg)
				p.mu.Unlock()
				p.conn.WriteToUDP([]byte(answer(msg, 180, "Ringing")), from)
			case "CANCEL", "BYE":
				p.conn.WriteToUDP([]byte(answer(msg, 200, "OK")), from)
			}
		}
	}()
	t.Cleanup(func() { close(p.stop); <-p.done })
	return p
}

func (p *pbx) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.invites...)
}

func TestBLegCarriesInboundMaxForwardsLessOne(t *testing.T) {
	p := startPBX(t)
	c := startCallctl(t, func(cfg *config.Config) { cfg.Trunk.Address = p.addr().String() })
	caller := newRawSIP(t, "127.0.0.1", 0)
	caller.sendTo(c.addr(), caller.invite(c.addr(), "2001", 10))
	if !callctltest.Eventually(5*time.Second, func() bool { return len(p.received()) > 0 }) {
		t.Fatal("the PBX got no B-leg INVITE")
	}
	if mf := header(p.received()[0], "Max-Forwards"); mf != "9" {
		t.Fatalf("B-leg Max-Forwards %q, want 9 (the inbound 10 less one, RFC 3261 16.6)", mf)
	}

	// Arriving with 1, the B leg would leave with 0: 483, and no B leg.
	caller.sendTo(c.addr(), caller.invite(c.addr(), "2002", 1))
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, _ := caller.read(time.Until(deadline))
		if msg == "" {
			t.Fatal("no 483 for an INVITE with Max-Forwards 1")
		}
		if status(msg) == 483 {
			break
		}
	}
	if n := len(p.received()); n != 1 {
		t.Errorf("the PBX got %d INVITEs, want 1 (none for the Max-Forwards 1 call)", n)
	}
}

func TestMaxSessionsHoldsUnderABurst(t *testing.T) {
	const max, burst = 5, 60
	p := startPBX(t)
	c := startCallctlWithPorts(t, 4*max+8, func(cfg *config.Config) {
		cfg.Trunk.Address = p.addr().String()
		cfg.Calls.MaxSessions = max
	})
	callers := make([]*rawSIP, 4)
	for i := range callers {
		callers[i] = newRawSIP(t, "127.0.0.1", 0)
	}
	var wg sync.WaitGroup
	for i, caller := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range burst / len(callers) {
				caller.sendTo(c.addr(), caller.invite(c.addr(), "2"+strconv.Itoa(i), 70))
			}
		}()
	}
	wg.Wait()
	callctltest.Eventually(3*time.Second, func() bool { return len(p.received()) >= max })
	time.Sleep(500 * time.Millisecond) // any B leg past the bound would show by now
	if live := c.app.Sessions().LiveCount(); live != max {
		t.Errorf("%d live sessions after a burst of %d INVITEs, want calls.max_sessions = %d", live, burst, max)
	}
	if n := len(p.received()); n != max {
		t.Errorf("the PBX got %d B legs, want %d", n, max)
	}
	refused := 0
	for _, caller := range callers {
		refused += caller.refusals(300 * time.Millisecond)
	}
	if refused != burst-max {
		t.Errorf("%d INVITEs answered 503, want %d", refused, burst-max)
	}
}

func TestMaxPerSourceBoundsOneSourceOnly(t *testing.T) {
	p := startPBX(t)
	c := startCallctl(t, func(cfg *config.Config) {
		cfg.Trunk.Address = p.addr().String()
		cfg.Calls.MaxPerSource = 2
	})
	busy := newRawSIP(t, "127.0.0.1", 0)
	other := newRawSIP(t, "127.0.0.2", 0)
	for range 4 {
		busy.sendTo(c.addr(), busy.invite(c.addr(), "2001", 70))
	}
	other.sendTo(c.addr(), other.invite(c.addr(), "2002", 70))
	if !callctltest.Eventually(5*time.Second, func() bool { return len(p.received()) == 3 }) {
		t.Fatalf("the PBX got %d B legs, want 3 (2 from the busy source, 1 from the other)", len(p.received()))
	}
	if refused := busy.refusals(time.Second); refused != 2 {
		t.Errorf("the busy source got %d 503s, want 2", refused)
	}
}

func TestTwoCallctlRoutedToEachOtherEndTheLoop(t *testing.T) {
	// Each routes every call to the other: a loop that only Max-Forwards
	// can end (each B leg is a new Call-ID, so loop detection cannot).
	portA, portB := peers.FreeUDPPort(t), peers.FreeUDPPort(t)
	configure := func(self, other int) func(*config.Config) {
		return func(cfg *config.Config) {
			cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", self)
			cfg.Trunk.Address = fmt.Sprintf("127.0.0.1:%d", other)
		}
	}
	a := startCallctlWithPorts(t, 200, configure(portA, portB))
	b := startCallctlWithPorts(t, 200, configure(portB, portA))
	caller := newRawSIP(t, "127.0.0.1", 0)
	caller.sendTo(a.addr(), caller.invite(a.addr(), "2001", 20))
	var final int
	deadline := time.Now().Add(15 * time.Second)
	for final == 0 && time.Now().Before(deadline) {
		if msg, _ := caller.read(time.Until(deadline)); status(msg) >= 300 {
			final = status(msg)
		}
	}
	if final == 0 {
		t.Fatal("the looping call got no final answer")
	}
	total := countSessions(a) + countSessions(b)
	// 20 hops at most: Max-Forwards 20, less one per callctl.
	if total > 20 {
		t.Errorf("%d sessions from one INVITE with Max-Forwards 20, want at most 20", total)
	}
	a.expectIdle(t)
	b.expectIdle(t)
}

// countSessions counts the sessions c has seen, live or ended.
func countSessions(c *callctl) int { return len(c.app.Sessions().List()) }
