package torture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// This file is the wire: messages written as templates, sent from raw
// sockets on 127.0.0.1, and the answers read back and split into headers.
// Nothing here uses sipgo, so what callctl parses is exactly what was
// written.

// vars are a message's substitutions. A template names them as $name; the
// longest names are replaced first, so $lhost is not read as $l + host.
type vars struct {
	Host, Port   string // callctl's SIP address
	LHost, LPort string // the sending socket's address (Via sent-by, Contact)
	Transport    string // "UDP" or "TCP", for Via
	CallID       string
	Branch       string // a fresh RFC 3261 branch, magic cookie included
	Tag          string // the From tag
	Number       string // the dialled number of an INVITE case
	EscNumber    string // Number with every character %-escaped (RFC 3261 19.1.2)
	SDPPort      string // the m= port of an offer
}

var serial atomic.Uint64

// newVars returns fresh Call-ID, branch and tag for one message sent from
// local to callctl at remote.
func newVars(remote, local net.Addr, transport string) vars {
	n := serial.Add(1)
	rh, rp, _ := net.SplitHostPort(remote.String())
	lh, lp, _ := net.SplitHostPort(local.String())
	return vars{
		Host: rh, Port: rp, LHost: lh, LPort: lp, Transport: strings.ToUpper(transport),
		CallID: fmt.Sprintf("torture-%d-%d@%s", time.Now().UnixNano(), n, lh),
		Branch: fmt.Sprintf("z9hG4bK-torture-%d-%d", time.Now().UnixNano(), n),
		Tag:    fmt.Sprintf("tt%d", n),
	}
}

// render writes template tpl as a SIP message: "\n" line ends become CRLF,
// a leading newline is dropped, the variables are substituted, and $len is
// the byte length of the body (what follows the first empty line), so a
// template gives a right Content-Length without counting. A template that
// means to lie about the length writes the number itself.
func render(tpl string, v vars) []byte {
	tpl = strings.TrimPrefix(tpl, "\n")
	r := strings.NewReplacer(
		"$transport", v.Transport, "$callid", v.CallID, "$branch", v.Branch, "$escnumber", v.EscNumber, "$number", v.Number,
		"$sdpport", v.SDPPort, "$lhost", v.LHost, "$lport", v.LPort, "$host", v.Host, "$port", v.Port, "$tag", v.Tag,
	)
	msg := strings.ReplaceAll(r.Replace(tpl), "\n", "\r\n")
	head, body, found := strings.Cut(msg, "\r\n\r\n")
	if !found {
		head, body = strings.TrimSuffix(msg, "\r\n"), ""
	}
	return []byte(strings.ReplaceAll(head, "$len", strconv.Itoa(len(body))) + "\r\n\r\n" + body)
}

// message is a SIP message as read off the wire.
type message struct {
	StartLine string
	Code      int    // a response's status code, 0 for a request
	Method    string // a request's method
	Header    textproto.MIMEHeader
	Body      []byte
}

// compact maps RFC 3261 7.3.3 compact header names (and RFC 3515's r) to
// the full names messages are indexed by.
var compact = map[string]string{
	"I": "Call-Id", "F": "From", "T": "To", "V": "Via", "L": "Content-Length", "M": "Contact",
	"C": "Content-Type", "E": "Content-Encoding", "S": "Subject", "K": "Supported", "R": "Refer-To",
}

// Get returns the first value of the named header ("" if absent); names
// are matched as textproto canonicalises them (case does not matter).
func (m *message) Get(name string) string { return m.Header.Get(name) }

// Values returns every value of the named header, each header line split
// at its commas (RFC 3261 7.3.1), trimmed.
func (m *message) Values(name string) []string {
	var out []string
	for _, line := range m.Header.Values(name) {
		for _, v := range strings.Split(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// Tag returns the tag parameter of the named header (To or From).
func (m *message) Tag(name string) string {
	for _, p := range strings.Split(m.Get(name), ";")[1:] {
		if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(k, "tag") {
			return v
		}
	}
	return ""
}

// CSeqMethod is the method of the CSeq header.
func (m *message) CSeqMethod() string {
	f := strings.Fields(m.Get("CSeq"))
	if len(f) != 2 {
		return ""
	}
	return f[1]
}

func (m *message) String() string {
	var b strings.Builder
	b.WriteString(m.StartLine)
	for k, vs := range m.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, " | %s: %s", k, v)
		}
	}
	return b.String()
}

// readMessage reads one message from r: start line, headers (folded lines
// joined, compact names expanded), and Content-Length bytes of body; with
// no Content-Length (allowed on UDP only) the body is the rest of r.
func readMessage(r *bufio.Reader) (*message, error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	for err == nil && line == "" { // keep-alive CRLFs between messages (RFC 5626 3.5.1)
		line, err = tp.ReadLine()
	}
	if err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil && !(errors.Is(err, io.EOF) && len(h) > 0) {
		return nil, fmt.Errorf("headers of %q: %w", line, err)
	}
	for short, long := range compact {
		if vs, ok := h[short]; ok {
			h[long] = append(h[long], vs...)
			delete(h, short)
		}
	}
	m := &message{StartLine: line, Header: h}
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 {
		return nil, fmt.Errorf("start line %q", line)
	}
	if strings.HasPrefix(f[0], "SIP/") {
		if m.Code, err = strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("status line %q", line)
		}
	} else {
		m.Method = f[0]
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("Content-Length %q", cl)
		}
		m.Body = make([]byte, n)
		if _, err := io.ReadFull(r, m.Body); err != nil {
			return nil, fmt.Errorf("body of %q: %w", line, err)
		}
	} else {
		m.Body, _ = io.ReadAll(r)
	}
	return m, nil
}

// wire is one client socket toward callctl: a UDP socket, or one TCP
// connection (messages framed by Content-Length, RFC 3261 18.3).
type wire interface {
	Send(t *testing.T, msg []byte)
	// Read returns the next message callctl sends on this socket, or an
	// error once timeout passes (or the connection closes).
	Read(timeout time.Duration) (*message, error)
	Local() net.Addr
	Remote() net.Addr
	Transport() string
	Close()
}

// dial opens a wire of transport ("udp" or "tcp") to callctl at addr. The
// local port is the kernel's choice on 127.0.0.1: bound before use, so
// nothing else can hold it (test/peers picks ports only for processes that
// bind their own).
func dial(t *testing.T, transport, addr string) wire {
	t.Helper()
	switch transport {
	case "udp":
		raddr, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		w := &udpWire{c: c, remote: raddr}
		t.Cleanup(w.Close)
		return w
	case "tcp":
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("TCP connection to callctl at %s: %v", addr, err)
		}
		w := &tcpWire{c: c, r: bufio.NewReader(c)}
		t.Cleanup(w.Close)
		return w
	}
	t.Fatalf("transport %q", transport)
	return nil
}

type udpWire struct {
	c      *net.UDPConn
	remote *net.UDPAddr
	// lazyRemote, when remote is nil, names it at the first Send (the
	// callee's socket exists before the callctl it answers).
	lazyRemote func() string
}

func (w *udpWire) Send(t *testing.T, msg []byte) {
	t.Helper()
	if w.remote == nil {
		raddr, err := net.ResolveUDPAddr("udp4", w.lazyRemote())
		if err != nil {
			t.Fatal(err)
		}
		w.remote = raddr
	}
	if _, err := w.c.WriteToUDP(msg, w.remote); err != nil {
		t.Fatalf("UDP send to %s: %v", w.remote, err)
	}
}

func (w *udpWire) Read(timeout time.Duration) (*message, error) {
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for {
		_ = w.c.SetReadDeadline(deadline)
		n, _, err := w.c.ReadFromUDP(buf)
		if err != nil {
			return nil, err
		}
		m, err := readMessage(bufio.NewReader(bytes.NewReader(buf[:n])))
		if err != nil {
			return nil, fmt.Errorf("callctl sent a datagram this test cannot read (%v): %q", err, buf[:n])
		}
		return m, nil
	}
}

func (w *udpWire) Local() net.Addr   { return w.c.LocalAddr() }
func (w *udpWire) Remote() net.Addr  { return w.remote }
func (w *udpWire) Transport() string { return "udp" }
func (w *udpWire) Close()            { w.c.Close() }

type tcpWire struct {
	c net.Conn
	r *bufio.Reader
}

func (w *tcpWire) Send(t *testing.T, msg []byte) {
	t.Helper()
	_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.c.Write(msg); err != nil {
		t.Fatalf("TCP send to %s: %v", w.c.RemoteAddr(), err)
	}
}

func (w *tcpWire) Read(timeout time.Duration) (*message, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(timeout))
	return readMessage(w.r)
}

func (w *tcpWire) Local() net.Addr   { return w.c.LocalAddr() }
func (w *tcpWire) Remote() net.Addr  { return w.c.RemoteAddr() }
func (w *tcpWire) Transport() string { return "tcp" }
func (w *tcpWire) Close()            { w.c.Close() }

// finalFor reads from w until callctl's final response to the request with
// Call-ID callID (any, if callID is empty: a request without one) arrives,
// skipping provisional responses and anything else; nil if none comes
// within timeout.
func finalFor(w wire, callID string, timeout time.Duration) (*message, []string) {
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, seen
		}
		m, err := w.Read(left)
		if err != nil {
			if !isTimeout(err) && !errors.Is(err, io.EOF) {
				seen = append(seen, err.Error())
			}
			if errors.Is(err, io.EOF) || !isTimeout(err) {
				return nil, seen
			}
			continue
		}
		seen = append(seen, m.StartLine)
		if m.Code >= 200 && (callID == "" || m.Get("Call-Id") == callID) {
			return m, seen
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
