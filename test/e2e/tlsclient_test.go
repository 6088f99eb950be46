package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsSIP is a minimal SIP UAC over one TLS connection, for what baresip
// 1.0 cannot send (a sips: Request-URI: its dial adds "sip:" in front) and
// for looking at the certificate callctl presents. It writes requests as
// text and reads whole messages (headers and Content-Length body).
type tlsSIP struct {
	conn  *tls.Conn
	r     *bufio.Reader
	local string // host:port of our end, for Via and Contact
}

// dialTLSSIP connects to addr trusting caFile (verifying the certificate
// for 127.0.0.1).
func dialTLSSIP(t *testing.T, addr, caFile string) *tlsSIP {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to callctl %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &tlsSIP{conn: conn, r: bufio.NewReader(conn), local: conn.LocalAddr().String()}
}

// send writes one message; lines are joined with CRLF and Content-Length
// is added for body.
func (c *tlsSIP) send(t *testing.T, head, body string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(head), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	if body != "" {
		lines = append(lines, "Content-Type: application/sdp")
	}
	lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)), "", body)
	if _, err := io.WriteString(c.conn, strings.Join(lines, "\r\n")); err != nil {
		t.Fatalf("TLS write: %v", err)
	}
}

// sipMsg is one message read: its start line, headers (lower-case names)
// and body.
type sipMsg struct {
	start   string
	headers map[string][]string
	body    string
}

func (m sipMsg) header(name string) string {
	if v := m.headers[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m sipMsg) status() int {
	f := strings.Fields(m.start)
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// read reads the next message within timeout.
func (c *tlsSIP) read(t *testing.T, timeout time.Duration) sipMsg {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	m := sipMsg{headers: map[string][]string{}}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("TLS read: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if m.start == "" {
			if line == "" {
				continue // keep-alive CRLF
			}
			m.start = line
			continue
		}
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		m.headers[name] = append(m.headers[name], strings.TrimSpace(value))
	}
	if n, _ := strconv.Atoi(m.header("Content-Length")); n > 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			t.Fatalf("TLS read body: %v", err)
		}
		m.body = string(buf)
	}
	return m
}

// final reads responses until a final one (≥ 200) and returns it.
func (c *tlsSIP) final(t *testing.T, timeout time.Duration) sipMsg {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := c.read(t, time.Until(deadline))
		if m.status() >= 200 {
			return m
		}
	}
}

// invite sends an INVITE for uri (a PCMU offer with rtpPort) as call
// callID, CSeq 1.
func (c *tlsSIP) invite(t *testing.T, uri, callID string, rtpPort int) {
	t.Helper()
	c.send(t, fmt.Sprintf(`INVITE %s SIP/2.0
		Via: SIP/2.0/TLS %s;branch=z9hG4bK-%s-1;rport
		From: <sips:alice@%s>;tag=a-%s
		To: <%s>
		Call-ID: %s
		CSeq: 1 INVITE
		Contact: <sips:alice@%s>
		Max-Forwards: 70`, uri, c.local, callID, c.local, callID, uri, callID, c.local),
		fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", rtpPort))
}

// ackAndBye ACKs res (the final answer to the INVITE of callID for uri):
// a 2xx gets an ACK and, when bye is set, a BYE to its Contact, whose 200
// is awaited; a failure gets the transaction's ACK.
func (c *tlsSIP) ack(t *testing.T, uri, callID string, res sipMsg, bye bool) {
	t.Helper()
	to := res.header("To")
	if res.status() >= 300 {
		c.send(t, fmt.Sprintf(`ACK %s SIP/2.0
			Via: SIP/2.0/TLS %s;branch=z9hG4bK-%s-1;rport
			From: <sips:alice@%s>;tag=a-%s
			To: %s
			Call-ID: %s
			CSeq: 1 ACK
			Max-Forwards: 70`, uri, c.local, callID, c.local, callID, to, callID), "")
		return
	}
	target := strings.Trim(res.header("Contact"), "<>")
	c.send(t, fmt.Sprintf(`ACK %s SIP/2.0
		Via: SIP/2.0/TLS %s;branch=z9hG4bK-%s-2;rport
		From: <sips:alice@%s>;tag=a-%s
		To: %s
		Call-ID: %s
		CSeq: 1 ACK
		Max-Forwards: 70`, target, c.local, callID, c.local, callID, to, callID), "")
	if !bye {
		return
	}
	c.send(t, fmt.Sprintf(`BYE %s SIP/2.0
		Via: SIP/2.0/TLS %s;branch=z9hG4bK-%s-3;rport
		From: <sips:alice@%s>;tag=a-%s
		To: %s
		Call-ID: %s
		CSeq: 2 BYE
		Max-Forwards: 70`, target, c.local, callID, c.local, callID, to, callID), "")
	if r := c.final(t, 5*time.Second); r.status() != 200 {
		t.Errorf("BYE over TLS answered %q; want 200", r.start)
	}
}
