package sip

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/flood"
)

// On TCP sipgo parses as bytes arrive: a header it cannot parse (CSeq: one)
// ends the connection unanswered, and a request without CSeq or Via gets a
// bare 400 from its transaction layer. RFC 3261 asks for the same answers
// on every transport (8.2, 21.4.1: a 400 saying what is malformed), and
// one bad message on a connection must not cost the calls it carries. So
// intake frames the stream itself (18.3: a message ends Content-Length
// bytes after its header section), checks each message as a datagram is
// checked, answers what it refuses on the connection, and gives sipgo only
// whole messages that passed.

// maxStreamMessage bounds what is held for one connection: sipgo's own
// limit on a message.
const maxStreamMessage = 65535

var (
	errStreamTooLarge = errors.New("SIP message on a stream exceeds 64 KiB")
	errStreamFraming  = errors.New("SIP message on a stream has no usable Content-Length")
)

// streamBuffers holds, per connection, the start of a message not yet
// complete. An entry lives only while a message is partial; one whose
// connection went away mid-message is swept after streamIdle.
type streamBuffers struct {
	mu sync.Mutex
	m  map[string]*partial
}

type partial struct {
	data []byte
	at   time.Time
}

const streamIdle = time.Minute

// take removes and returns the partial message of connection key.
func (s *streamBuffers) take(key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.m[key]
	if p == nil {
		return nil
	}
	delete(s.m, key)
	return p.data
}

// keep stores the partial message of connection key (a copy).
func (s *streamBuffers) keep(key string, data []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*partial{}
	}
	if len(s.m) >= 256 {
		for k, p := range s.m {
			if now.Sub(p.at) > streamIdle {
				delete(s.m, k)
			}
		}
	}
	s.m[key] = &partial{data: bytes.Clone(data), at: now}
}

// frameStream returns the whole messages of a connection that completed
// with data and passed the checks; the rest of a partial message is kept
// for the next read. An error makes sipgo close the connection: the stream
// can no longer be framed.
func (a *Agent) frameStream(props gosip.TransportReadProps, ip netip.Addr, data []byte) ([]byte, error) {
	key := props.LocalAddr.String() + "|" + props.RemoteAddr.String()
	held := a.streams.take(key)
	if held == nil && len(bytes.Trim(data, "\r\n")) == 0 {
		return data, nil // an RFC 5626 keep-alive: sipgo answers it
	}
	buf := append(held, data...)
	var out []byte
	for {
		// RFC 3261 7.5: CRLFs before a start line are ignored.
		for len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n' {
			buf = buf[2:]
		}
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			if len(buf) > maxStreamMessage {
				a.shed(dropUnparsable, ip)
				return nil, errStreamTooLarge
			}
			break
		}
		head := buf[:end+4]
		n, ok := streamContentLength(head)
		if !ok {
			a.refuseFraming(props, ip, head)
			return nil, errStreamFraming
		}
		if end+4+n > maxStreamMessage {
			a.shed(dropUnparsable, ip)
			return nil, errStreamTooLarge
		}
		if len(buf) < end+4+n {
			break
		}
		msg := buf[:end+4+n]
		buf = buf[end+4+n:]
		if a.admitStreamMessage(props, ip, msg) {
			out = append(out, msg...)
		}
	}
	if len(buf) > 0 {
		a.streams.keep(key, buf, time.Now())
	}
	return out, nil
}

// streamContentLength reads the Content-Length (or l) of a header section:
// on a stream it must be there and be a number (RFC 3261 18.3, 20.14).
func streamContentLength(head []byte) (int, bool) {
	n, found := -1, 0
	for _, line := range unfold(head) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || canonicalHeader(string(bytes.TrimSpace(name))) != "Content-Length" {
			continue
		}
		found++
		v, err := strconv.Atoi(string(bytes.TrimSpace(value)))
		if err != nil || v < 0 {
			return 0, false
		}
		n = v
	}
	return n, found == 1
}

// admitStreamMessage checks one whole message of a stream as intake checks
// a datagram. A request refused is answered on its connection (its source
// is real: a TCP handshake), within sip.flood; a bad response is dropped.
func (a *Agent) admitStreamMessage(props gosip.TransportReadProps, ip netip.Addr, data []byte) bool {
	msg, rej := parseDatagram(data)
	switch m := msg.(type) {
	case *gosip.Request:
		if rej == nil {
			rej = checkRequestOn(m, props.Transport)
		}
		if rej == nil {
			return true // guard applies sip.flood and sip.scanners
		}
		if !m.IsAck() && a.mayAnswer(ip, data) {
			a.answerStream(props, ip, m, rej)
		}
		return false
	case *gosip.Response:
		if checkResponse(m) {
			return true
		}
		a.shed(dropBadResponse, ip)
		return false
	default:
		a.shed(dropUnparsable, ip)
		return false
	}
}

// mayAnswer applies sip.flood and sip.scanners to a request about to be
// refused, as guard does to those that pass: bad requests are no way
// around the rate.
func (a *Agent) mayAnswer(ip netip.Addr, data []byte) bool {
	switch v, _ := a.limiter.Allow(ip); v {
	case flood.Limited:
		a.shed(dropLimited, ip)
		return false
	case flood.Blocked:
		a.shed(dropBlocked, ip)
		return false
	}
	if a.isScanner(data) {
		a.shed(dropScanner, ip)
		return false
	}
	return true
}

// refuseFraming answers 400 to a request whose Content-Length is missing,
// repeated or not a number, before its connection is closed.
func (a *Agent) refuseFraming(props gosip.TransportReadProps, ip netip.Addr, head []byte) {
	lines := unfold(head)
	if len(lines) == 0 {
		return
	}
	var kept [][]byte
	for _, line := range lines[1:] {
		if name, _, _ := bytes.Cut(line, []byte(":")); canonicalHeader(string(bytes.TrimSpace(name))) != "Content-Length" {
			kept = append(kept, line)
		}
	}
	msg, _ := parseDatagram(joinMessage(lines[0], kept))
	req, ok := msg.(*gosip.Request)
	if !ok || req.IsAck() || !a.mayAnswer(ip, head) {
		a.shed(dropUnparsable, ip)
		return
	}
	a.answerStream(props, ip, req, badRequest("Content-Length header missing, repeated or malformed on a stream"))
}

// answerStream writes the answer to req for r on the connection req came
// on, if it makes a valid response.
func (a *Agent) answerStream(props gosip.TransportReadProps, ip netip.Addr, req *gosip.Request, r *rejection) {
	res := a.rejectionResponse(req, r)
	if _, err := parseMessage([]byte(res.String())); err != nil {
		a.shed(dropUnparsable, ip)
		return
	}
	c, err := a.ua.TransportLayer().GetConnection(props.Transport, props.RemoteAddr.String())
	if err != nil {
		a.log.Debug("sip: no connection for a stream answer", zap.Int("status", r.status), zap.Error(err))
		return
	}
	a.countSent(r.status)
	if err := c.WriteMsg(res); err != nil {
		a.log.Debug("sip: stream answer not sent", zap.Int("status", r.status), zap.Error(err))
	}
}
