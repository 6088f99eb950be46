package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FloodNumberPrefix starts every number a flood INVITE dials. The callee
// side answers such INVITEs 404, as a PBX answers a scanner's guesses, so
// that flood calls callctl lets through do not become calls with media.
const FloodNumberPrefix = "00999"

// Garbage kinds a flood can mix in (FloodConfig.Garbage).
const (
	GarbageRandom    = "random"    // random bytes, 1 to 1,400 of them
	GarbageTruncated = "truncated" // a flood INVITE cut at a random length
	// GarbageMissingHeader is a group: a flood INVITE without one of the
	// headers RFC 3261 makes mandatory, each in turn.
	GarbageMissingHeader = "missing-header"
)

// missingHeaders are the kinds GarbageMissingHeader expands to: "no-"
// and the header left out.
var missingHeaders = []string{"To", "From", "Call-ID", "CSeq", "Via", "Max-Forwards"}

// GarbageKinds lists every kind name FloodConfig.Garbage accepts.
func GarbageKinds() []string {
	ks := []string{GarbageRandom, GarbageTruncated, GarbageMissingHeader}
	for _, h := range missingHeaders {
		ks = append(ks, "no-"+strings.ToLower(h))
	}
	return ks
}

// FloodConfig describes a flood from one source address: what a scanner
// or a denial-of-service attempt sends at a SIP server.
type FloodConfig struct {
	// Target is the SIP host:port to flood (callctl's sip.listen).
	Target string
	// Source is the local IPv4 address to send from, e.g. 127.0.0.5 (any
	// 127.0.0.0/8 address plays another host on loopback); default
	// 127.0.0.1. The port is picked by the kernel.
	Source string
	// Rate is INVITEs per second, each with a fresh Call-ID, branch and
	// tag; default 3,000.
	Rate float64
	// GarbageRate is garbage datagrams per second besides the INVITEs; 0
	// sends none.
	GarbageRate float64
	// Garbage are the kinds of garbage, sent in turn: GarbageRandom,
	// GarbageTruncated, GarbageMissingHeader, or one "no-<header>" of
	// GarbageKinds; default all three groups.
	Garbage []string
	// UserAgent of the INVITEs; default "callctl-flood" (not a known
	// scanner's: a scanner filter must not be what sheds this flood).
	UserAgent string
	// Duration is how long to send; required.
	Duration time.Duration
	// Linger is how long to go on counting what comes back after the last
	// datagram was sent (retransmitted answers); default 2 s.
	Linger time.Duration
	// Seed seeds the garbage; 0 picks one.
	Seed uint64
}

// FloodResult is what a flood sent and what came back to its source.
type FloodResult struct {
	Target    string  `json:"target"`
	Source    string  `json:"source"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"` // sending
	LingerS   float64 `json:"linger_s"`   // counting after the last send

	InvitesSent   uint64            `json:"invites_sent"`
	GarbageSent   map[string]uint64 `json:"garbage_sent,omitempty"` // by kind
	DatagramsSent uint64            `json:"datagrams_sent"`
	BytesSent     uint64            `json:"bytes_sent"`
	SendErrors    uint64            `json:"send_errors"`

	DatagramsReceived uint64 `json:"datagrams_received"`
	BytesReceived     uint64 `json:"bytes_received"`
	// Responses counts the responses that came back by status code,
	// retransmissions included; Requests counts requests (by method) the
	// target sent to the flood's source.
	Responses  map[string]uint64 `json:"responses,omitempty"`
	Requests   map[string]uint64 `json:"requests,omitempty"`
	Unparsable uint64            `json:"unparsable"`
	// InvitesAnswered is how many distinct INVITEs got at least one
	// response; the rest were shed silently. GarbageAnswered is the same
	// for the garbage that carried a Call-ID.
	InvitesAnswered uint64  `json:"invites_answered"`
	GarbageAnswered uint64  `json:"garbage_answered"`
	AnsweredPct     float64 `json:"invites_answered_pct"`
	// Reflection is datagrams received per datagram sent: above 1, the
	// target amplifies a forged source's traffic toward its victim.
	Reflection float64 `json:"reflection"`
}

// Validate reports what is wrong with c, if anything.
func (c FloodConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults checks c and fills its defaults.
func (c FloodConfig) withDefaults() (FloodConfig, error) {
	if _, err := netip.ParseAddrPort(c.Target); err != nil {
		return c, fmt.Errorf("loadgen: FloodConfig.Target %q: want an IPv4 host:port such as 127.0.0.1:5070", c.Target)
	}
	if c.Source == "" {
		c.Source = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(c.Source); err != nil || !ip.Is4() {
		return c, fmt.Errorf("loadgen: FloodConfig.Source %q: want an IPv4 address such as 127.0.0.5", c.Source)
	}
	if c.Rate == 0 {
		c.Rate = 3000
	}
	if c.Rate < 0 || c.GarbageRate < 0 || c.Linger < 0 {
		return c, errors.New("loadgen: FloodConfig.Rate, GarbageRate and Linger must not be negative")
	}
	if c.Duration <= 0 {
		return c, errors.New("loadgen: FloodConfig.Duration must be set: how long to send")
	}
	if len(c.Garbage) == 0 {
		c.Garbage = []string{GarbageRandom, GarbageTruncated, GarbageMissingHeader}
	}
	var kinds []string
	for _, k := range c.Garbage {
		switch {
		case k == GarbageMissingHeader:
			for _, h := range missingHeaders {
				kinds = append(kinds, "no-"+strings.ToLower(h))
			}
		case slices.Contains(GarbageKinds(), k):
			kinds = append(kinds, k)
		default:
			return c, fmt.Errorf("loadgen: FloodConfig.Garbage: unknown kind %q; want some of %s", k, strings.Join(GarbageKinds(), ", "))
		}
	}
	c.Garbage = kinds
	if c.UserAgent == "" {
		c.UserAgent = "callctl-flood"
	}
	if c.Linger == 0 {
		c.Linger = 2 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return c, nil
}

// flooder is one flood: its socket, what it sends and what it counts.
type flooder struct {
	cfg    FloodConfig
	conn   *net.UDPConn
	src    netip.AddrPort
	target netip.AddrPort
	runID  string
	rng    *rand.Rand

	// Counted by the reader only, read after it has stopped.
	received, bytesIn, unparsable uint64
	responses, requests           map[string]uint64
	answeredInv, answeredGarbage  bitset
}

// Flood sends cfg's flood to its target and counts what comes back; it
// returns when the flood and its linger are over, or ctx ends.
func Flood(ctx context.Context, cfg FloodConfig) (*FloodResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &flooder{cfg: cfg, target: netip.MustParseAddrPort(cfg.Target), rng: rand.New(rand.NewPCG(cfg.Seed, 0x666c6f6f64)),
		responses: map[string]uint64{}, requests: map[string]uint64{}}
	f.runID = strconv.FormatUint(cfg.Seed%(1<<32), 36)
	src := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(cfg.Source), 0))
	if f.conn, err = net.ListenUDP("udp4", src); err != nil {
		return nil, fmt.Errorf("loadgen: flood socket on %s: %w (any 127.0.0.0/8 address works on Linux loopback)", cfg.Source, err)
	}
	f.src = f.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	// A big receive buffer: every answer is counted, none dropped here.
	_ = setSocketBuffers(f.conn, 4<<20)
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); f.read() }()

	r := &FloodResult{Target: cfg.Target, Source: f.src.String(), Rate: cfg.Rate, GarbageSent: map[string]uint64{}}
	start := time.Now()
	f.send(ctx, r)
	r.DurationS = round3(time.Since(start).Seconds())
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Linger):
	}
	r.LingerS = round3(time.Since(start).Seconds() - r.DurationS)
	f.conn.Close()
	<-readerDone

	r.DatagramsReceived, r.BytesReceived, r.Unparsable = f.received, f.bytesIn, f.unparsable
	r.Responses, r.Requests = f.responses, f.requests
	r.InvitesAnswered, r.GarbageAnswered = f.answeredInv.count(), f.answeredGarbage.count()
	if r.InvitesSent > 0 {
		r.AnsweredPct = round3(float64(r.InvitesAnswered) * 100 / float64(r.InvitesSent))
	}
	if r.DatagramsSent > 0 {
		r.Reflection = round3(float64(r.DatagramsReceived) / float64(r.DatagramsSent))
	}
	return r, ctx.Err()
}

// send paces the INVITEs and the garbage until cfg.Duration: every 2 ms
// it sends what is due by then, so the rate holds whatever the timer's
// jitter.
func (f *flooder) send(ctx context.Context, r *FloodResult) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var invites, garbage uint64
	buf := make([]byte, 0, 2048)
	out := func(b []byte) {
		r.DatagramsSent++
		r.BytesSent += uint64(len(b))
		if _, err := f.conn.WriteToUDPAddrPort(b, f.target); err != nil {
			r.SendErrors++
		}
	}
	for {
		el := time.Since(start)
		if el >= f.cfg.Duration {
			el = f.cfg.Duration
		}
		for due := uint64(el.Seconds() * f.cfg.Rate); invites < due; invites++ {
			buf = f.invite(buf[:0], "i", invites, "")
			out(buf)
			r.InvitesSent++
		}
		for due := uint64(el.Seconds() * f.cfg.GarbageRate); garbage < due; garbage++ {
			kind := f.cfg.Garbage[garbage%uint64(len(f.cfg.Garbage))]
			buf = f.garbage(buf[:0], kind, garbage)
			out(buf)
			r.GarbageSent[kind]++
		}
		if el >= f.cfg.Duration {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// invite writes flood INVITE n: a well-formed call attempt with an offer,
// except that omit, if set, names a header left out. kind is "i" for the
// flood's INVITEs and "g" for garbage, so that answers are told apart by
// Call-ID.
func (f *flooder) invite(b []byte, kind string, n uint64, omit string) []byte {
	ip := f.cfg.Source
	num := FloodNumberPrefix + strconv.FormatUint(n, 10)
	ruri := "sip:" + num + "@" + f.target.String()
	sdp := appendSDP(nil, ip, 9, n+1, n+1, "sendrecv", -1)
	hdr := func(name, value string) {
		if !strings.EqualFold(name, omit) {
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, value...)
			b = append(b, "\r\n"...)
		}
	}
	id := kind + strconv.FormatUint(n, 10) + "-" + f.runID
	b = append(b, "INVITE "+ruri+" SIP/2.0\r\n"...)
	hdr("Via", "SIP/2.0/UDP "+f.src.String()+";branch=z9hG4bKfl"+id+";rport")
	hdr("Max-Forwards", "70")
	hdr("From", "<sip:flood@"+ip+">;tag=fl"+id)
	hdr("To", "<"+ruri+">")
	hdr("Call-ID", "fl-"+id+"@"+ip)
	hdr("CSeq", "1 INVITE")
	hdr("Contact", "<sip:flood@"+f.src.String()+">")
	hdr("User-Agent", f.cfg.UserAgent)
	hdr("Content-Type", "application/sdp")
	hdr("Content-Length", strconv.Itoa(len(sdp)))
	b = append(b, "\r\n"...)
	return append(b, sdp...)
}

// garbage writes garbage datagram n of kind.
func (f *flooder) garbage(b []byte, kind string, n uint64) []byte {
	switch kind {
	case GarbageRandom:
		size := 1 + f.rng.IntN(1400)
		for range size {
			b = append(b, byte(f.rng.UintN(256)))
		}
		return b
	case GarbageTruncated:
		b = f.invite(b, "g", n, "")
		return b[:1+f.rng.IntN(len(b)-1)]
	}
	h, _ := strings.CutPrefix(kind, "no-")
	for _, name := range missingHeaders {
		if strings.EqualFold(name, h) {
			return f.invite(b, "g", n, name)
		}
	}
	return b
}

// read counts what comes back until the socket is closed.
func (f *flooder) read() {
	buf := make([]byte, 65535)
	var m sipMsg
	for {
		n, _, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f.received++
		f.bytesIn += uint64(n)
		if parseSIP(buf[:n], &m) != nil {
			f.unparsable++
			continue
		}
		if m.request {
			f.requests[string(m.method)]++
			continue
		}
		f.responses[strconv.Itoa(m.status)]++
		f.markAnswered(m.callID)
	}
}

// markAnswered records that the datagram whose Call-ID is id got an
// answer: "fl-<kind><n>-<run>@<ip>".
func (f *flooder) markAnswered(id []byte) {
	s, ok := strings.CutPrefix(string(id), "fl-")
	if !ok || len(s) < 2 {
		return
	}
	dash := strings.IndexByte(s, '-')
	if dash < 2 {
		return
	}
	n, err := strconv.ParseUint(s[1:dash], 10, 32)
	if err != nil {
		return
	}
	switch s[0] {
	case 'i':
		f.answeredInv.set(n)
	case 'g':
		f.answeredGarbage.set(n)
	}
}

// WriteSummary writes r for people.
func (r *FloodResult) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "flood    %s → %s  %.0f INVITE/s for %.1fs (counted %.1fs more)\n", r.Source, r.Target, r.Rate, r.DurationS, r.LingerS)
	var g []string
	for _, k := range slices.Sorted(maps.Keys(r.GarbageSent)) {
		g = append(g, fmt.Sprintf("%s %d", k, r.GarbageSent[k]))
	}
	fmt.Fprintf(w, "sent     %d INVITEs  garbage: %s  (%d datagrams, %d bytes, %d send errors)\n",
		r.InvitesSent, strings.Join(g, ", "), r.DatagramsSent, r.BytesSent, r.SendErrors)
	var rs []string
	for _, k := range slices.Sorted(maps.Keys(r.Responses)) {
		rs = append(rs, fmt.Sprintf("%s × %d", k, r.Responses[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Requests)) {
		rs = append(rs, fmt.Sprintf("%s × %d", k, r.Requests[k]))
	}
	fmt.Fprintf(w, "received %d datagrams (%d bytes, %d unparsable): %s\n", r.DatagramsReceived, r.BytesReceived, r.Unparsable, strings.Join(rs, ", "))
	fmt.Fprintf(w, "shed     %d of %d INVITEs answered (%.2f%%), %d garbage answered; reflection %.3f datagrams out per datagram in\n",
		r.InvitesAnswered, r.InvitesSent, r.AnsweredPct, r.GarbageAnswered, r.Reflection)
}

// bitset is a growable set of small integers.
type bitset []uint64

func (b *bitset) set(n uint64) {
	for uint64(len(*b)) <= n/64 {
		*b = append(*b, 0)
	}
	(*b)[n/64] |= 1 << (n % 64)
}

func (b bitset) count() uint64 {
	var c int
	for _, w := range b {
		c += bits.OnesCount64(w)
	}
	return uint64(c)
}
