package sip

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/flood"
)

// Why a message was dropped before sipgo's transaction layer saw it.
const (
	dropRefused     = iota // source not on sip.allow
	dropLimited            // source over its request rate (sip.flood)
	dropBlocked            // source blocked for exceeding its rate too long
	dropScanner            // User-Agent of a known scanner
	dropUnparsable         // not SIP at all, or not enough to answer
	dropBadResponse        // a response missing what RFC 3261 makes mandatory
	numDropReasons
)

var dropNames = [numDropReasons]string{"refused", "rate_limited", "blocked", "scanner", "unparsable", "bad_response"}

// errRefusedStream closes a TCP connection from a source not on sip.allow:
// sipgo ends a connection whose read filter fails.
var errRefusedStream = errors.New("source not on sip.allow")

// Dropped returns how many messages were dropped unanswered, by reason:
// refused, rate_limited, blocked, scanner, unparsable, bad_response.
func (a *Agent) Dropped() map[string]uint64 {
	out := make(map[string]uint64, numDropReasons)
	for i, name := range dropNames {
		out[name] = a.dropped[i].Load()
	}
	return out
}

// Panics returns how many SIP handler panics were recovered.
func (a *Agent) Panics() uint64 { return a.panics.Load() }

// shed counts a dropped message and notes it in the summary log.
func (a *Agent) shed(reason int, src netip.Addr) {
	a.dropped[reason].Add(1)
	if reason == dropRefused {
		a.refused.Add(1)
	}
	a.summary.Note(dropNames[reason], src.String())
}

// intake is sipgo's read filter: every datagram or stream chunk passes here
// before it is parsed or reaches a transaction. It is the first line of
// defence (docs/design.md, "The network is hostile"): on UDP, whose sources can
// be forged, nothing refused, shed or malformed gets a transaction or any
// state; what must be answered is answered statelessly, once.
func (a *Agent) intake(props gosip.TransportReadProps, data []byte) (out []byte, err error) {
	if a.closing.Load() {
		return nil, nil
	}
	// A panic here would end sipgo's read loop, and with it every call:
	// drop the datagram instead.
	defer func() {
		if r := recover(); r != nil {
			a.panics.Add(1)
			a.log.Error("sip: intake panicked; message dropped", zap.Any("panic", r), zap.StackSkip("stack", 1))
			out, err = nil, nil
		}
	}()
	if !strings.EqualFold(props.Transport, "udp") {
		return a.intakeStream(props, data)
	}
	ua, ok := props.RemoteAddr.(*net.UDPAddr)
	if !ok {
		return nil, nil
	}
	src := ua.AddrPort()
	ip := src.Addr().Unmap()
	// RFC 5626 keep-alives (CRLF) are sipgo's to answer.
	if len(bytes.Trim(data, "\r\n")) == 0 {
		return data, nil
	}
	isRequest := !bytes.HasPrefix(data, []byte("SIP/"))
	if !a.allowedAddr(ip) {
		a.shed(dropRefused, ip)
		if a.policy.Load().refuse403 && isRequest {
			a.refuseStateless(data, props.RemoteAddr)
		}
		return nil, nil
	}
	if isRequest {
		switch v, justBlocked := a.limiter.Allow(ip); v {
		case flood.Limited:
			a.shed(dropLimited, ip)
			return nil, nil
		case flood.Blocked:
			if justBlocked {
				a.log.Warn("security: SIP source blocked for exceeding sip.flood.rate",
					zap.String("source", ip.String()), zap.Duration("for", a.limiter.BlockFor()))
			}
			a.shed(dropBlocked, ip)
			return nil, nil
		}
		if a.isScanner(data) {
			a.shed(dropScanner, ip)
			return nil, nil
		}
	}
	msg, rej := parseDatagram(data)
	switch m := msg.(type) {
	case *gosip.Request:
		if rej == nil {
			rej = checkRequest(m)
		}
		if rej != nil {
			if !m.IsAck() {
				a.replyStateless(m, rej, props.RemoteAddr)
			}
			return nil, nil
		}
	case *gosip.Response:
		if !checkResponse(m) {
			a.shed(dropBadResponse, ip)
			return nil, nil
		}
	default:
		a.shed(dropUnparsable, ip)
		return nil, nil
	}
	return data, nil
}

// acceptResponse is the check of a response that reached a transaction
// (a stream's; intake checked datagrams): a malformed one is dropped and
// counted, and the transaction waits on as if it had not come.
func (a *Agent) acceptResponse(res *gosip.Response) bool {
	if checkResponse(res) {
		return true
	}
	ip := netip.IPv4Unspecified()
	if ap, err := netip.ParseAddrPort(res.Source()); err == nil {
		ip = ap.Addr().Unmap()
	}
	a.shed(dropBadResponse, ip)
	return false
}

// intakeStream filters what arrives on a TCP connection: the source first
// (a refused source's connection is closed), then each whole message as a
// datagram is checked (framer.go); guard applies sip.flood and sip.scanners
// to what passes. TCP sources cannot be forged, so answering them costs no
// reflection.
func (a *Agent) intakeStream(props gosip.TransportReadProps, data []byte) ([]byte, error) {
	if ap, err := netip.ParseAddrPort(props.RemoteAddr.String()); err == nil {
		ip := ap.Addr().Unmap()
		if !a.allowedAddr(ip) {
			a.shed(dropRefused, ip)
			return nil, errRefusedStream
		}
		if a.limiter.IsBlocked(ip) {
			a.shed(dropBlocked, ip)
			return nil, errRefusedStream
		}
		return a.frameStream(props, ip, data)
	}
	return data, nil
}

// allowedAddr reports whether ip is on sip.allow.
func (a *Agent) allowedAddr(ip netip.Addr) bool {
	for _, p := range a.policy.Load().allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isScanner reports whether a request's User-Agent contains one of
// sip.scanners (case-insensitive), without parsing it.
func (a *Agent) isScanner(data []byte) bool {
	scanners := a.policy.Load().scanners
	if len(scanners) == 0 {
		return false
	}
	ua := headerValue(data, "user-agent")
	if ua == nil {
		return false
	}
	lower := bytes.ToLower(ua)
	for _, s := range scanners {
		if bytes.Contains(lower, s) {
			return true
		}
	}
	return false
}

// headerValue returns the value of the first header named name (lower
// case) in a raw message's header section, or nil.
func headerValue(data []byte, name string) []byte {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		if bytes.EqualFold(bytes.TrimSpace(line[:colon]), []byte(name)) {
			return bytes.TrimSpace(line[colon+1:])
		}
	}
	return nil
}

// replyStateless answers a request that may not reach a transaction: once,
// to the address it came from (RFC 3581 style), never retransmitted. A
// retransmitted request gets the same answer again.
func (a *Agent) replyStateless(req *gosip.Request, r *rejection, to net.Addr) {
	out, ok := a.statelessAnswer(req, r)
	if !ok {
		a.shed(dropUnparsable, addrIP(to))
		return
	}
	a.countSent(r.status)
	if _, err := a.udpConn.WriteTo(out, to); err != nil {
		a.log.Debug("sip: stateless answer not sent", zap.Int("status", r.status), zap.Error(err))
	}
}

// statelessAnswer writes the answer to req for r, if it makes a valid
// response: a request can be broken in ways sipgo parses but cannot write
// back (a Via without a transport, say), and an answer its sender could not
// parse is not worth sending.
func (a *Agent) statelessAnswer(req *gosip.Request, r *rejection) ([]byte, bool) {
	out := []byte(a.rejectionResponse(req, r).String())
	if _, err := parseMessage(out); err != nil {
		return nil, false
	}
	return out, true
}

func addrIP(addr net.Addr) netip.Addr {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return ua.AddrPort().Addr().Unmap()
	}
	return netip.IPv4Unspecified()
}

// refuseStateless answers a refused source's request with 403, once and
// without a transaction (sip.refused: 403); a request too broken to answer
// is dropped.
func (a *Agent) refuseStateless(data []byte, to net.Addr) {
	msg, _ := parseDatagram(data)
	req, ok := msg.(*gosip.Request)
	if !ok || req.IsAck() {
		return
	}
	a.replyStateless(req, &rejection{status: 403, reason: "Forbidden"}, to)
}

// parseDatagram parses one datagram. A request that does not parse as a
// whole is salvaged: it comes back with the rejection that names what is
// wrong (RFC 3261 21.4.1: 400 says what is malformed in its reason or a
// Warning), so it can be answered. Anything else comes back nil.
func parseDatagram(data []byte) (gosip.Message, *rejection) {
	msg, err := parseMessage(data)
	if err == nil {
		return msg, nil
	}
	if bytes.HasPrefix(data, []byte("SIP/")) {
		return nil, nil
	}
	if req, rej := salvage(data); req != nil {
		return req, rej
	}
	return nil, nil
}

// maxSalvageLines bounds the work spent on one broken request.
const maxSalvageLines = 64

// salvage rebuilds a request that sipgo could not parse from its request
// line and the header lines that parse on their own, and says which header
// was malformed (or that Content-Length promised more body than came). It
// returns nil when even the request line is broken: then there is nothing
// to answer.
func salvage(data []byte) (*gosip.Request, *rejection) {
	head, body, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	lines := unfold(head)
	if len(lines) == 0 || len(lines) > maxSalvageLines {
		return nil, nil
	}
	start := lines[0]
	if _, err := parseMessage(joinMessage(start, nil)); err != nil {
		return nil, nil
	}
	var kept [][]byte
	var malformed string
	contentLength := -1
	for _, line := range lines[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			if malformed == "" {
				malformed = "header line without ':'"
			}
			continue
		}
		canonical := canonicalHeader(string(bytes.TrimSpace(name)))
		if canonical == "Content-Length" {
			n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil || n < 0 {
				if malformed == "" {
					malformed = "Content-Length header"
				}
			} else {
				contentLength = n
			}
			continue
		}
		if _, err := parseMessage(joinMessage(start, [][]byte{line})); err != nil {
			if malformed == "" {
				malformed = printable(canonical) + " header"
			}
			continue
		}
		kept = append(kept, line)
	}
	msg, err := parseMessage(joinMessage(start, kept))
	if err != nil {
		return nil, nil
	}
	req, ok := msg.(*gosip.Request)
	if !ok {
		return nil, nil
	}
	switch {
	case malformed != "":
		return req, badRequest("Malformed " + malformed)
	case contentLength > len(body):
		// RFC 3261 18.3: a datagram that ends before the body does.
		return req, badRequest("Content-Length " + strconv.Itoa(contentLength) + " is larger than the body of " + strconv.Itoa(len(body)) + " bytes")
	default:
		return req, badRequest("Malformed request")
	}
}

// unfold splits a header section into lines, joining continuation lines
// (RFC 3261 7.3.1: a line starting with a space or tab continues the last).
func unfold(head []byte) [][]byte {
	var lines [][]byte
	for _, line := range bytes.Split(head, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && len(lines) > 0 {
			last := lines[len(lines)-1]
			lines[len(lines)-1] = append(append(last[:len(last):len(last)], ' '), bytes.TrimLeft(line, " \t")...)
			continue
		}
		if len(line) == 0 {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

func joinMessage(start []byte, headers [][]byte) []byte {
	var b bytes.Buffer
	b.Write(start)
	b.WriteString("\r\n")
	for _, h := range headers {
		b.Write(h)
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// canonicalHeader names a header as RFC 3261 spells it, compact forms
// (7.3.3) included, for a rejection's Warning.
func canonicalHeader(name string) string {
	switch lower := string(bytes.ToLower([]byte(name))); lower {
	case "i", "call-id":
		return "Call-ID"
	case "f", "from":
		return "From"
	case "t", "to":
		return "To"
	case "v", "via":
		return "Via"
	case "l", "content-length":
		return "Content-Length"
	case "c", "content-type":
		return "Content-Type"
	case "m", "contact":
		return "Contact"
	case "cseq":
		return "CSeq"
	case "max-forwards":
		return "Max-Forwards"
	default:
		return name
	}
}
