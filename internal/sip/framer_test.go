package sip

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// streamConn is one TCP connection to the agent, read message by message.
type streamConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialStream(t *testing.T, a *Agent) *streamConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &streamConn{c: c, r: bufio.NewReader(c)}
}

func (s *streamConn) write(t *testing.T, data string) {
	t.Helper()
	if _, err := io.WriteString(s.c, data); err != nil {
		t.Fatal(err)
	}
}

// next reads one response (headers and Content-Length of body); nil on a
// closed connection or after 2 s.
func (s *streamConn) next(t *testing.T) *gosip.Response {
	t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var head strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return nil
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	m, err := gosip.ParseMessage([]byte(head.String()))
	if err != nil {
		t.Fatalf("unparsable answer: %v\n%s", err, head.String())
	}
	res := m.(*gosip.Response)
	if n := res.ContentLength(); n != nil && *n > 0 {
		if _, err := io.CopyN(io.Discard, s.r, int64(*n)); err != nil {
			return nil
		}
	}
	return res
}

func (s *streamConn) options(edit ...string) string {
	msg := tcpOptions("")(s.c.LocalAddr().String())
	for i := 0; i+1 < len(edit); i += 2 {
		msg = strings.Replace(msg, edit[i], edit[i+1], 1)
	}
	return msg
}

func TestStreamMalformedRequestIsAnsweredAndTheConnectionLives(t *testing.T) {
	a := tcpAgent(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s := dialStream(t, a)
	for _, c := range []struct{ old, new, names string }{
		{"CSeq: 1 OPTIONS", "CSeq: one OPTIONS", "CSeq"},
		{"CSeq: 1 OPTIONS\r\n", "", "CSeq"},
		{"Via: ", "X-Via: ", "Via"},
		{"Content-Length: 0", "Content-Length: 0\r\nThis line has no colon", "header line"},
	} {
		s.write(t, s.options(c.old, c.new))
		res := s.next(t)
		if res == nil || res.StatusCode != 400 {
			t.Fatalf("%q instead of %q: answer %v; want 400", c.new, c.old, res)
		}
		if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), c.names) {
			t.Errorf("%q instead of %q: Warning %v; want it to name %s", c.new, c.old, w, c.names)
		}
		// The same connection still carries requests.
		s.write(t, s.options())
		if res := s.next(t); res == nil || res.StatusCode != 200 {
			t.Fatalf("after %q: a good OPTIONS on the same connection got %v; want 200", c.new, res)
		}
	}
}

func TestStreamMessagesAreFramedAcrossAndWithinReads(t *testing.T) {
	a := tcpAgent(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s := dialStream(t, a)
	// Two in one write, the second with a body; then one cut in three.
	body := "v=0\r\n"
	withBody := s.options("Content-Length: 0", "Content-Type: application/sdp\r\nContent-Length: "+strconv.Itoa(len(body))) + body
	s.write(t, s.options()+"\r\n"+withBody)
	one := s.options()
	for _, part := range []string{one[:20], one[20 : len(one)-3], one[len(one)-3:]} {
		s.write(t, part)
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 3 {
		if res := s.next(t); res == nil || res.StatusCode != 200 {
			t.Fatalf("answer %d: %v; want 200", i+1, res)
		}
	}
}

func TestStreamWithoutContentLengthIsAnswered400AndClosed(t *testing.T) {
	a := tcpAgent(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s := dialStream(t, a)
	s.write(t, s.options("Content-Length: 0\r\n", ""))
	res := s.next(t)
	if res == nil || res.StatusCode != 400 {
		t.Fatalf("answer %v; want 400 (RFC 3261 18.3: a stream needs Content-Length)", res)
	}
	if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "Content-Length") {
		t.Errorf("Warning %v; want it to name Content-Length", w)
	}
	if res := s.next(t); res != nil {
		t.Errorf("after the 400 the connection carried %v; want it closed", res)
	}
}
