package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Direction is an SDP media direction attribute (RFC 3264 §5.1, §8.4).
type Direction string

// The four directions. An SDP without one means SendRecv.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Valid reports whether d is one of the four directions.
func (d Direction) Valid() bool {
	switch d {
	case SendRecv, SendOnly, RecvOnly, Inactive:
		return true
	}
	return false
}

// Reverse returns the direction seen from the other end: the answer to an
// offer of SendOnly is RecvOnly (RFC 3264 §6.1), and so on.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Codec is one payload type offered on the audio m= line.
type Codec struct {
	PayloadType uint8
	// Name is the encoding name as written in a=rtpmap (or RFC 3551's name
	// for a static payload type); empty for a dynamic type without rtpmap.
	Name      string
	ClockRate uint32
	Channels  int
	// Fmtp is the a=fmtp parameter string for this payload type, if any.
	Fmtp string
}

// MediaInfo is what callctl needs from one SDP: where the party's audio is
// and how it is encoded.
type MediaInfo struct {
	// Remote is where to send RTP: the c= address (media level, else
	// session level) and the audio m= port. Invalid when the stream is
	// rejected or on hold with c=0.0.0.0.
	Remote netip.AddrPort
	// RTCP is where to send RTCP: a=rtcp (RFC 3605) if present, else the
	// port above Remote's.
	RTCP netip.AddrPort
	// RTCPMux is set when the party offers or accepts RTCP on the RTP port
	// (a=rtcp-mux, RFC 5761).
	RTCPMux bool
	// Direction is the audio stream's direction attribute (media level,
	// else session level, else sendrecv). A c=0.0.0.0 hold (RFC 2543, see
	// RFC 3264 §8.4) reads as Inactive.
	Direction Direction
	// Codecs lists the payload types in m= line order (preference order).
	Codecs []Codec
	// TelephoneEvent is the payload type of RFC 4733 telephone-event
	// (preferring the 8000 Hz one), or -1 if none is offered.
	TelephoneEvent int
	// Port0 is set when the audio stream is rejected or disabled (port 0,
	// RFC 3264 §6, §8.2).
	Port0 bool
	// Profile is the audio m= line's transport: RTP/AVP, RTP/AVPF, or the
	// SRTP ones RTP/SAVP and RTP/SAVPF (RFC 3711 §12, RFC 5124).
	Profile string
	// Crypto lists the audio stream's a=crypto lines callctl can use
	// (RFC 4568; see ParseCrypto), in SDP order; lines it cannot use are
	// left out. They may come with RTP/AVP too ("best effort" SRTP).
	Crypto []Crypto
}

// SRTP reports whether the stream uses an SRTP profile (RTP/SAVP or
// RTP/SAVPF), that is, whether a=crypto is mandatory for it.
func (m MediaInfo) SRTP() bool { return IsSecureProfile(m.Profile) }

// staticCodec returns RFC 3551 Table 4's audio encoding for a static
// payload type listed without a=rtpmap; Name is empty for others.
func staticCodec(pt uint8) Codec {
	c := Codec{PayloadType: pt, ClockRate: defaultClockRate, Channels: 1}
	switch pt {
	case 0:
		c.Name = "PCMU"
	case 3:
		c.Name = "GSM"
	case 4:
		c.Name = "G723"
	case 5:
		c.Name = "DVI4"
	case 6:
		c.Name, c.ClockRate = "DVI4", 16000
	case 7:
		c.Name = "LPC"
	case 8:
		c.Name = "PCMA"
	case 9:
		c.Name = "G722" // 8000 by RFC 3551's famous mistake, kept for compatibility
	case 10:
		c.Name, c.ClockRate, c.Channels = "L16", 44100, 2
	case 11:
		c.Name, c.ClockRate = "L16", 44100
	case 12:
		c.Name = "QCELP"
	case 13:
		c.Name = "CN"
	case 14:
		c.Name, c.ClockRate = "MPA", 90000
	case 15:
		c.Name = "G728"
	case 16:
		c.Name, c.ClockRate = "DVI4", 11025
	case 17:
		c.Name, c.ClockRate = "DVI4", 22050
	case 18:
		c.Name = "G729"
	default:
		return Codec{PayloadType: pt}
	}
	return c
}

// ParseSDP reads the audio stream callctl relays out of an SDP body: the
// first audio m= line with RTP/AVP, RTP/AVPF, RTP/SAVP or RTP/SAVPF transport and a non-zero
// port (else the first such line, reported as Port0). The error wraps
// ErrBadSDP and says what is wrong, for a 488 answer and its log line.
func ParseSDP(body []byte) (MediaInfo, error) {
	sd, err := unmarshalSDP(body)
	if err != nil {
		return MediaInfo{}, err
	}
	return mediaInfo(sd)
}

// ParsedSDP is a body as ParseSDPKeep read it, kept for one
// SDPWriter.RewriteParsed: a party's offer or answer is read to learn its
// media and then rewritten for the other leg, and reading it twice (pion's
// parse and callctl's line checks) was a tenth of a call's SDP work.
type ParsedSDP struct {
	body []byte
	sd   *sdp.SessionDescription // nil once a rewrite has taken it
}

// Body returns the body that was parsed.
func (p *ParsedSDP) Body() []byte { return p.body }

// ParseSDPKeep is ParseSDP that also returns the parsed body, for
// RewriteParsed.
func ParseSDPKeep(body []byte) (MediaInfo, *ParsedSDP, error) {
	sd, err := unmarshalSDP(body)
	if err != nil {
		return MediaInfo{}, nil, err
	}
	info, err := mediaInfo(sd)
	if err != nil {
		return MediaInfo{}, nil, err
	}
	return info, &ParsedSDP{body: body, sd: sd}, nil
}

// mediaInfo is ParseSDP on a parsed body; it leaves sd as it is.
func mediaInfo(sd *sdp.SessionDescription) (MediaInfo, error) {
	md, err := audioStream(sd)
	if err != nil {
		return MediaInfo{}, err
	}

	info := MediaInfo{TelephoneEvent: -1, Direction: SendRecv}
	if info.Codecs, err = codecs(md); err != nil {
		return MediaInfo{}, err
	}
	info.TelephoneEvent = telephoneEvent(info.Codecs)
	if d, ok := direction(md.Attributes); ok {
		info.Direction = d
	} else if d, ok := direction(sd.Attributes); ok {
		info.Direction = d
	}
	_, info.RTCPMux = md.Attribute("rtcp-mux")
	info.Profile = strings.Join(md.MediaName.Protos, "/")
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		if c, err := ParseCrypto(a.Value); err == nil {
			info.Crypto = append(info.Crypto, c)
		}
	}

	port := md.MediaName.Port.Value
	if port == 0 {
		info.Port0 = true
		return info, nil // a rejected stream needs no address (RFC 3264 §6)
	}
	addr, err := connectionAddress(sd, md)
	if err != nil {
		return MediaInfo{}, err
	}
	if addr.IsUnspecified() {
		// RFC 2543 hold: "do not send to me". No remote until unhold.
		info.Direction = Inactive
		return info, nil
	}
	info.Remote = netip.AddrPortFrom(addr, uint16(port))
	if v, ok := md.Attribute("rtcp"); ok {
		if info.RTCP, err = parseRTCPAttribute(v, addr); err != nil {
			return MediaInfo{}, err
		}
	} else if port < maxPort {
		info.RTCP = netip.AddrPortFrom(addr, uint16(port+1))
	}
	return info, nil
}

// unmarshalSDP parses a body with pion/sdp, forgiving a missing final
// line break (common in hand-written and some UAs' bodies). It checks the
// line shapes and m= lines first, so that the usual mistakes are named
// plainly rather than as a pion syntax error at a byte offset.
func unmarshalSDP(body []byte) (*sdp.SessionDescription, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: body is empty", ErrBadSDP)
	}
	text := string(body)
	if !strings.HasSuffix(text, "\n") {
		text += "\r\n"
	}
	if err := checkLines(text); err != nil {
		return nil, err
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		if n, line, ok := lineAtSyntaxError(text, err); ok {
			return nil, fmt.Errorf("%w: line %d %q is out of place or malformed "+
				"(RFC 4566 §5 order: v o s i u e p c b t r z k a, then per stream m i c b k a)", ErrBadSDP, n, line)
		}
		return nil, fmt.Errorf("%w: malformed (%v)", ErrBadSDP, err)
	}
	return &sd, nil
}

// knownMedia reports the m= media types pion/sdp accepts.
func knownMedia(m string) bool {
	switch m {
	case "audio", "video", "text", "application", "message":
		return true
	}
	return false
}

// checkLines checks that every line is <type>=<value> without control
// characters, that the body
// starts with v=0, and that m= lines have a known media type, a valid port
// and at least one format.
func checkLines(text string) error {
	n := 0
	for line := range strings.Lines(text) {
		n++
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if strings.ContainsAny(line, "\r\x00") {
			// RFC 4566 §9: no CR or NUL inside a line; pion/sdp would
			// misread a stray CR as part of a line ending.
			return fmt.Errorf("%w: line %d %q contains a stray CR or NUL", ErrBadSDP, n, line)
		}
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return fmt.Errorf("%w: line %d %q is not <type>=<value>", ErrBadSDP, n, line)
		}
		if n == 1 && line != "v=0" {
			return fmt.Errorf("%w: first line is %q, want \"v=0\"", ErrBadSDP, line)
		}
		if line[0] != 'm' {
			continue
		}
		f := strings.Fields(line[2:])
		if len(f) < 4 {
			return fmt.Errorf("%w: m= line %q is incomplete (want \"m=<media> <port> <proto> <fmt> ...\")", ErrBadSDP, line)
		}
		if !knownMedia(f[0]) {
			return fmt.Errorf("%w: m=%s streams are not supported (callctl relays RTP audio; T.38 fax and the like are refused)",
				ErrBadSDP, f[0])
		}
		portS, _, _ := strings.Cut(f[1], "/")
		if port, err := strconv.Atoi(portS); err != nil || port < 0 || port > maxPort {
			return fmt.Errorf("%w: bad port %q in m=%s line (want 0..65535)", ErrBadSDP, f[1], f[0])
		}
	}
	return nil
}

// lineAtSyntaxError finds the line a pion/sdp syntax error points at; its
// message carries only a byte offset ("syntax error at pos N").
func lineAtSyntaxError(text string, err error) (n int, line string, ok bool) {
	msg := err.Error()
	i := strings.Index(msg, "syntax error at pos ")
	if i < 0 {
		return 0, "", false
	}
	digits := msg[i+len("syntax error at pos "):]
	if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
		digits = digits[:j]
	}
	pos, convErr := strconv.Atoi(digits)
	if convErr != nil || pos < 0 || pos >= len(text) {
		return 0, "", false
	}
	start := strings.LastIndexByte(text[:pos], '\n') + 1
	n = strings.Count(text[:start], "\n") + 1
	line, _, _ = strings.Cut(text[start:], "\n")
	return n, strings.TrimRight(line, "\r"), true
}

// audioIndex picks the audio stream callctl relays; see ParseSDP.
func audioIndex(sd *sdp.SessionDescription) (int, error) {
	// In order of preference: an enabled plain RTP line, an enabled SRTP
	// line, then a disabled one of each. Plain first keeps the old
	// behaviour for offers of the same stream twice, SRTP and RTP (RFC 5939
	// §3.7's best-effort alternative): the session then speaks RTP.
	best, bestRank, otherProto := -1, 5, ""
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		proto := strings.Join(md.MediaName.Protos, "/")
		if !relayedProfile(proto) {
			if otherProto == "" {
				otherProto = proto
			}
			continue
		}
		rank := 0
		if IsSecureProfile(proto) {
			rank = 1
		}
		if md.MediaName.Port.Value == 0 {
			rank += 2
		}
		if rank < bestRank {
			best, bestRank = i, rank
		}
	}
	switch {
	case best >= 0:
		return best, nil
	case otherProto != "":
		return -1, fmt.Errorf("%w: no RTP/AVP or RTP/SAVP audio m= line (audio is offered only as %s; callctl relays RTP and SDES-SRTP, not DTLS-SRTP)",
			ErrBadSDP, otherProto)
	}
	return -1, fmt.Errorf("%w: no audio m= line", ErrBadSDP)
}

// relayedProfile reports the m= transports callctl relays: RTP and
// SDES-keyed SRTP, with or without feedback (AVPF).
func relayedProfile(proto string) bool {
	switch proto {
	case "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF":
		return true
	}
	return false
}

func audioStream(sd *sdp.SessionDescription) (*sdp.MediaDescription, error) {
	i, err := audioIndex(sd)
	if err != nil {
		return nil, err
	}
	return sd.MediaDescriptions[i], nil
}

// codecs lists the m= line's payload types with their rtpmap and fmtp.
func codecs(md *sdp.MediaDescription) ([]Codec, error) {
	if len(md.MediaName.Formats) == 0 {
		return nil, fmt.Errorf("%w: audio m= line lists no payload types", ErrBadSDP)
	}
	out := make([]Codec, 0, len(md.MediaName.Formats))
	index := make(map[uint8]int, len(md.MediaName.Formats))
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 8)
		if err != nil || pt > 127 {
			return nil, fmt.Errorf("%w: bad payload type %q in audio m= line (want 0..127)", ErrBadSDP, f)
		}
		c := staticCodec(uint8(pt))
		if _, dup := index[c.PayloadType]; dup {
			continue
		}
		index[c.PayloadType] = len(out)
		out = append(out, c)
	}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, name, rate, channels, err := parseRtpmap(a.Value)
			if err != nil {
				return nil, err
			}
			if i, ok := index[pt]; ok {
				out[i].Name, out[i].ClockRate, out[i].Channels = name, rate, channels
			}
		case "fmtp":
			ptS, params, _ := strings.Cut(a.Value, " ")
			pt, err := strconv.ParseUint(ptS, 10, 8)
			if err != nil {
				return nil, fmt.Errorf("%w: bad a=fmtp:%s (payload type is not a number)", ErrBadSDP, a.Value)
			}
			if i, ok := index[uint8(pt)]; ok {
				out[i].Fmtp = strings.TrimSpace(params)
			}
		}
	}
	return out, nil
}

// parseRtpmap reads "<pt> <name>/<rate>[/<channels>]" (RFC 4566 §6).
func parseRtpmap(v string) (pt uint8, name string, rate uint32, channels int, err error) {
	bad := func(why string) (uint8, string, uint32, int, error) {
		return 0, "", 0, 0, fmt.Errorf("%w: bad a=rtpmap:%s (%s; want \"<pt> <name>/<rate>[/<channels>]\")", ErrBadSDP, v, why)
	}
	ptS, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return bad("no encoding")
	}
	p, err := strconv.ParseUint(ptS, 10, 8)
	if err != nil || p > 127 {
		return bad("payload type is not 0..127")
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return bad("encoding is not name/rate")
	}
	r, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || r == 0 {
		return bad("clock rate is not a positive number")
	}
	channels = 1
	if len(parts) == 3 {
		c, err := strconv.Atoi(parts[2])
		if err != nil || c < 1 {
			return bad("channels is not a positive number")
		}
		channels = c
	}
	return uint8(p), parts[0], uint32(r), channels, nil
}

func telephoneEvent(cs []Codec) int {
	pt := -1
	for _, c := range cs {
		if !strings.EqualFold(c.Name, "telephone-event") {
			continue
		}
		if c.ClockRate == defaultClockRate {
			return int(c.PayloadType)
		}
		if pt < 0 {
			pt = int(c.PayloadType)
		}
	}
	return pt
}

// direction returns the first direction attribute among attrs.
func direction(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		if d := Direction(a.Key); d.Valid() && a.Value == "" {
			return d, true
		}
	}
	return "", false
}

// connectionAddress returns the audio stream's c= address, media level
// first (RFC 4566 §5.7).
func connectionAddress(sd *sdp.SessionDescription, md *sdp.MediaDescription) (netip.Addr, error) {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil || ci.Address.Address == "" {
		return netip.Addr{}, fmt.Errorf("%w: c= address missing (neither in the audio m= section nor at session level)", ErrBadSDP)
	}
	return parseConnectionAddress(ci.AddressType, ci.Address.Address)
}

func parseConnectionAddress(addrType, s string) (netip.Addr, error) {
	host, _, _ := strings.Cut(s, "/") // multicast TTL/count suffix
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP address", ErrBadSDP, s)
	}
	if addr.Zone() != "" || (addrType == "IP4") != addr.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q does not match address type %s", ErrBadSDP, s, addrType)
	}
	if addr.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: c= address %s is multicast; callctl relays unicast media only", ErrBadSDP, addr)
	}
	return addr, nil
}

// parseRTCPAttribute reads a=rtcp:<port> [IN IP4|IP6 <addr>] (RFC 3605).
func parseRTCPAttribute(v string, def netip.Addr) (netip.AddrPort, error) {
	f := strings.Fields(v)
	if len(f) != 1 && len(f) != 4 {
		return netip.AddrPort{}, fmt.Errorf("%w: bad a=rtcp:%s (want \"<port>\" or \"<port> IN IP4 <address>\")", ErrBadSDP, v)
	}
	port, err := strconv.Atoi(f[0])
	if err != nil || port < 1 || port > maxPort {
		return netip.AddrPort{}, fmt.Errorf("%w: bad port %q in a=rtcp (want 1..65535)", ErrBadSDP, f[0])
	}
	addr := def
	if len(f) == 4 {
		if f[1] != "IN" {
			return netip.AddrPort{}, fmt.Errorf("%w: bad a=rtcp:%s (network type must be IN)", ErrBadSDP, v)
		}
		if addr, err = parseConnectionAddress(f[2], f[3]); err != nil {
			return netip.AddrPort{}, fmt.Errorf("in a=rtcp: %w", err)
		}
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
