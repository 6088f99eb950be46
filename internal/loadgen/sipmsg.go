package loadgen

import (
	"bytes"
	"errors"
	"strconv"
)

// sipMsg is a parsed SIP message over UDP. Its byte slices point into the
// datagram it was parsed from and are valid only while that buffer is.
// Only what the generator needs is parsed (RFC 3261 §7): the start line,
// the dialog and transaction identifiers, Contact, and the body.
type sipMsg struct {
	request bool
	method  []byte // request method, or the CSeq method of a response
	ruri    []byte
	status  int
	reason  []byte

	callID     []byte
	cseq       uint32
	cseqMethod []byte
	from, to   []byte // header values
	fromTag    []byte
	toTag      []byte
	vias       [][]byte // Via values in order, as received
	branch     []byte   // of the top Via
	contactURI []byte
	body       []byte

	// RFC 3262 and RFC 4028, read for Config.Extensions.
	require100rel  bool   // Require lists 100rel
	support100rel  bool   // Supported or Require lists 100rel
	rseq           uint32 // RSeq of a reliable provisional; 0 if none
	rack           []byte // RAck of a PRACK
	sessionExpires []byte // Session-Expires value

	viaBuf [4][]byte
}

var errBadSIP = errors.New("loadgen: malformed SIP message")

// parseSIP parses one datagram into m.
func parseSIP(b []byte, m *sipMsg) error {
	*m = sipMsg{}
	m.vias = m.viaBuf[:0]
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return errBadSIP
	}
	head, body := b[:end+2], b[end+4:]
	eol := bytes.Index(head, []byte("\r\n"))
	line := head[:eol]
	rest := head[eol+2:]
	if bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		if len(line) < 11 {
			return errBadSIP
		}
		code, err := strconv.Atoi(string(line[8:11]))
		if err != nil {
			return errBadSIP
		}
		m.status = code
		if len(line) > 12 {
			m.reason = line[12:]
		}
	} else {
		sp1 := bytes.IndexByte(line, ' ')
		sp2 := bytes.LastIndexByte(line, ' ')
		if sp1 <= 0 || sp2 <= sp1 {
			return errBadSIP
		}
		m.request = true
		m.method, m.ruri = line[:sp1], line[sp1+1:sp2]
	}
	contentLength := -1
	for len(rest) > 0 {
		eol := bytes.Index(rest, []byte("\r\n"))
		if eol < 0 {
			eol = len(rest)
		}
		hl := rest[:eol]
		if eol+2 <= len(rest) {
			rest = rest[eol+2:]
		} else {
			rest = nil
		}
		colon := bytes.IndexByte(hl, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimSpace(hl[:colon])
		val := bytes.TrimSpace(hl[colon+1:])
		switch {
		case headerIs(name, "Via", "v"):
			if len(m.vias) < cap(m.vias) {
				m.vias = append(m.vias, val)
			}
			if m.branch == nil {
				m.branch = param(val, "branch")
			}
		case headerIs(name, "Call-ID", "i"):
			m.callID = val
		case headerIs(name, "CSeq", ""):
			sp := bytes.IndexByte(val, ' ')
			if sp < 0 {
				return errBadSIP
			}
			n, err := strconv.ParseUint(string(val[:sp]), 10, 32)
			if err != nil {
				return errBadSIP
			}
			m.cseq, m.cseqMethod = uint32(n), bytes.TrimSpace(val[sp+1:])
		case headerIs(name, "From", "f"):
			m.from, m.fromTag = val, param(val, "tag")
		case headerIs(name, "To", "t"):
			m.to, m.toTag = val, param(val, "tag")
		case headerIs(name, "Contact", "m"):
			m.contactURI = uriOf(val)
		case headerIs(name, "Require", ""):
			if hasOption(val, "100rel") {
				m.require100rel, m.support100rel = true, true
			}
		case headerIs(name, "Supported", "k"):
			if hasOption(val, "100rel") {
				m.support100rel = true
			}
		case headerIs(name, "RSeq", ""):
			n, err := strconv.ParseUint(string(val), 10, 32)
			if err != nil {
				return errBadSIP
			}
			m.rseq = uint32(n)
		case headerIs(name, "RAck", ""):
			m.rack = val
		case headerIs(name, "Session-Expires", "x"):
			m.sessionExpires = val
		case headerIs(name, "Content-Length", "l"):
			n, err := strconv.Atoi(string(val))
			if err != nil {
				return errBadSIP
			}
			contentLength = n
		}
	}
	if contentLength >= 0 && contentLength <= len(body) {
		body = body[:contentLength]
	}
	m.body = body
	if !m.request {
		m.method = m.cseqMethod
	}
	if m.callID == nil || m.cseqMethod == nil || len(m.vias) == 0 {
		return errBadSIP
	}
	return nil
}

// hasOption reports whether a Require or Supported value lists option.
func hasOption(v []byte, option string) bool {
	for len(v) > 0 {
		tok := v
		if comma := bytes.IndexByte(v, ','); comma >= 0 {
			tok, v = v[:comma], v[comma+1:]
		} else {
			v = nil
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), []byte(option)) {
			return true
		}
	}
	return false
}

func headerIs(name []byte, long, short string) bool {
	return bytes.EqualFold(name, []byte(long)) || (short != "" && len(name) == 1 && (name[0]|0x20) == short[0])
}

// param returns the value of ;name=value in a header value, or nil. It
// looks at parameters outside <...> only, where header parameters live.
func param(v []byte, name string) []byte {
	if gt := bytes.LastIndexByte(v, '>'); gt >= 0 {
		v = v[gt+1:]
	}
	for len(v) > 0 {
		semi := bytes.IndexByte(v, ';')
		if semi < 0 {
			return nil
		}
		v = v[semi+1:]
		eq := bytes.IndexByte(v, '=')
		stop := bytes.IndexAny(v, ";,")
		if stop < 0 {
			stop = len(v)
		}
		if eq >= 0 && eq < stop && bytes.EqualFold(bytes.TrimSpace(v[:eq]), []byte(name)) {
			return bytes.TrimSpace(v[eq+1 : stop])
		}
	}
	return nil
}

// uriOf returns the URI of a name-addr or addr-spec header value.
func uriOf(v []byte) []byte {
	if lt := bytes.IndexByte(v, '<'); lt >= 0 {
		if gt := bytes.IndexByte(v[lt:], '>'); gt > 0 {
			return v[lt+1 : lt+gt]
		}
	}
	if semi := bytes.IndexByte(v, ';'); semi >= 0 {
		return v[:semi]
	}
	return v
}

// sdpInfo is what the generator reads from an SDP body.
type sdpInfo struct {
	addr      []byte // c= address
	port      int    // m=audio port
	dir       string // sendrecv, sendonly, recvonly, inactive
	eventPT   int    // telephone-event payload type, -1 if none
	hasPCMU   bool
	formats   []byte // m=audio formats, as written
	audioSeen bool
}

// parseSDP reads the first audio stream of an SDP body (RFC 4566).
func parseSDP(b []byte) (sdpInfo, error) {
	s := sdpInfo{dir: "sendrecv", eventPT: -1}
	inAudio := false
	for len(b) > 0 {
		eol := bytes.IndexByte(b, '\n')
		var line []byte
		if eol < 0 {
			line, b = b, nil
		} else {
			line, b = b[:eol], b[eol+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		v := line[2:]
		switch line[0] {
		case 'c':
			if !s.audioSeen || inAudio {
				if f := bytes.Fields(v); len(f) == 3 {
					s.addr = f[2]
				}
			}
		case 'm':
			if s.audioSeen {
				inAudio = false
				continue
			}
			f := bytes.Fields(v)
			if len(f) >= 4 && string(f[0]) == "audio" {
				p, err := strconv.Atoi(string(f[1]))
				if err != nil {
					return s, errors.New("loadgen: bad m=audio port")
				}
				s.port, s.audioSeen, inAudio = p, true, true
				s.formats = v[bytes.Index(v, f[3]):]
				for _, pt := range f[3:] {
					if string(pt) == "0" {
						s.hasPCMU = true
					}
				}
			}
		case 'a':
			if !inAudio && s.audioSeen {
				continue
			}
			switch string(v) {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				s.dir = string(v)
			}
			if bytes.HasPrefix(v, []byte("rtpmap:")) && bytes.Contains(bytes.ToLower(v), []byte("telephone-event/")) {
				sp := bytes.IndexByte(v, ' ')
				if pt, err := strconv.Atoi(string(v[7:max(sp, 7)])); err == nil {
					s.eventPT = pt
				}
			}
		}
	}
	if !s.audioSeen {
		return s, errors.New("loadgen: SDP has no m=audio line")
	}
	return s, nil
}

// answerDir is the direction to answer an offer with (RFC 3264 §6.1).
func answerDir(offered string) string {
	switch offered {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// appendSDP writes the generator's SDP: PCMU and, when eventPT >= 0,
// telephone-event, at ip:port with direction dir. sessVersion goes up by
// one for each new body on a dialog (RFC 3264 §8).
func appendSDP(b []byte, ip string, port int, sessID, sessVersion uint64, dir string, eventPT int) []byte {
	b = append(b, "v=0\r\no=- "...)
	b = strconv.AppendUint(b, sessID, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, sessVersion, 10)
	b = append(b, " IN IP4 "...)
	b = append(b, ip...)
	b = append(b, "\r\ns=callctl-load\r\nc=IN IP4 "...)
	b = append(b, ip...)
	b = append(b, "\r\nt=0 0\r\nm=audio "...)
	b = strconv.AppendInt(b, int64(port), 10)
	b = append(b, " RTP/AVP 0"...)
	if eventPT >= 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(eventPT), 10)
	}
	b = append(b, "\r\na=rtpmap:0 PCMU/8000\r\n"...)
	if eventPT >= 0 {
		b = append(b, "a=rtpmap:"...)
		b = strconv.AppendInt(b, int64(eventPT), 10)
		b = append(b, " telephone-event/8000\r\na=fmtp:"...)
		b = strconv.AppendInt(b, int64(eventPT), 10)
		b = append(b, " 0-16\r\n"...)
	}
	b = append(b, "a=ptime:20\r\na="...)
	b = append(b, dir...)
	b = append(b, "\r\n"...)
	return b
}

// reqHead is what a response copies from its request (RFC 3261 §8.2.6.2).
type reqHead struct {
	vias       [][]byte
	from, to   []byte
	toTag      []byte
	callID     []byte
	cseq       uint32
	cseqMethod []byte
}

// head returns m's reqHead, pointing into m's buffer.
func (m *sipMsg) head() reqHead {
	return reqHead{vias: m.vias, from: m.from, to: m.to, toTag: m.toTag, callID: m.callID, cseq: m.cseq, cseqMethod: m.cseqMethod}
}

// clone copies h out of the datagram's buffer, to keep it.
func (h reqHead) clone() reqHead {
	c := reqHead{cseq: h.cseq, from: clone(h.from), to: clone(h.to), toTag: clone(h.toTag), callID: clone(h.callID), cseqMethod: clone(h.cseqMethod)}
	for _, v := range h.vias {
		c.vias = append(c.vias, clone(v))
	}
	return c
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// appendResponse writes a response to req: its Vias, From, Call-ID and
// CSeq copied, To with toTag added if the request's To has none (RFC 3261
// §8.2.6.2), then extra header lines (each ending in CRLF) and the body.
func appendResponse(b []byte, req reqHead, code int, reason, toTag string, extra []byte, contentType string, body []byte) []byte {
	b = append(b, "SIP/2.0 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	b = append(b, "\r\n"...)
	for _, v := range req.vias {
		b = append(b, "Via: "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "From: "...)
	b = append(b, req.from...)
	b = append(b, "\r\nTo: "...)
	b = append(b, req.to...)
	if req.toTag == nil && toTag != "" {
		b = append(b, ";tag="...)
		b = append(b, toTag...)
	}
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, req.callID...)
	b = append(b, "\r\nCSeq: "...)
	b = strconv.AppendUint(b, uint64(req.cseq), 10)
	b = append(b, ' ')
	b = append(b, req.cseqMethod...)
	b = append(b, "\r\nServer: callctl-load\r\n"...)
	b = append(b, extra...)
	if len(body) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, contentType...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}
