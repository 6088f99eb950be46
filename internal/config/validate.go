package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/policy"
)

// FieldError is one invalid setting: Key is its dotted yaml path
// ("media.rtp_ports", "routes[2].match"), Msg says what is wrong and which
// values are allowed.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Lowest and highest port media.rtp_ports may use: below 1024 are
// privileged ports.
const (
	minRTPPort = 1024
	maxRTPPort = 65535
)

var (
	// transports are what sip.transports may list (the TLS listener is
	// sip.tls.listen); dialTransports what B legs may use.
	transports     = []string{"udp", "tcp"}
	dialTransports = []string{"udp", "tcp", "tls"}
	logLevels      = []string{"debug", "info", "warn", "error"}
	logFormats     = []string{"console", "json"}
)

// Validate checks every setting and returns all problems at once, joined
// (errors.Join); each is a *FieldError naming the key and the allowed
// values. A nil result means callctl can start with c.
func (c Config) Validate() error {
	v := validator{}

	v.listenAddr("sip.listen", c.SIP.Listen)
	if len(c.SIP.Transports) == 0 {
		v.add("sip.transports", "empty; list at least one of %s", strings.Join(transports, ", "))
	}
	seen := map[string]bool{}
	for i, t := range c.SIP.Transports {
		key := fmt.Sprintf("sip.transports[%d]", i)
		switch {
		case !oneOf(t, transports):
			v.add(key, "%q is not a transport (allowed: %s)", t, strings.Join(transports, ", "))
		case seen[t]:
			v.add(key, "%q is listed twice", t)
		}
		seen[t] = true
	}
	if c.SIP.Advertise != "" {
		v.host("sip.advertise", c.SIP.Advertise)
	}
	if len(c.SIP.Allow) == 0 {
		v.add("sip.allow", "empty: no peer could send calls; list the PBX's addresses or prefixes (0.0.0.0/0 and ::/0 accept anyone)")
	}
	for i, a := range c.SIP.Allow {
		if _, err := parsePrefix(a); err != nil {
			v.add(fmt.Sprintf("sip.allow[%d]", i), "%q is not an IP address or CIDR prefix (e.g. 10.0.0.0/8, 192.0.2.7, ::1/128)", a)
		}
	}
	if strings.ContainsAny(c.SIP.UserAgent, "\r\n") {
		v.add("sip.user_agent", "must be one line (it is sent as a SIP header)")
	}
	if c.SIP.Refused != "drop" && c.SIP.Refused != "403" {
		v.add("sip.refused", "%q; must be one of: drop, 403", c.SIP.Refused)
	}
	if c.SIP.Flood.Rate < 0 {
		v.add("sip.flood.rate", "%g; must be 0 (no limit) or more", c.SIP.Flood.Rate)
	}
	if c.SIP.Flood.Rate > 0 && c.SIP.Flood.Burst < 1 {
		v.add("sip.flood.burst", "%d; must be at least 1 while sip.flood.rate is set", c.SIP.Flood.Burst)
	}
	v.duration("sip.flood.block_after", c.SIP.Flood.BlockAfter)
	v.duration("sip.flood.block_for", c.SIP.Flood.BlockFor)
	if c.SIP.Flood.BlockAfter > 0 && c.SIP.Flood.BlockFor <= 0 {
		v.add("sip.flood.block_for", "%s; must be more than 0 while sip.flood.block_after is set (e.g. \"60s\")", c.SIP.Flood.BlockFor)
	}
	for i, sc := range c.SIP.Scanners {
		if strings.TrimSpace(sc) == "" {
			v.add(fmt.Sprintf("sip.scanners[%d]", i), "empty; list User-Agent substrings such as friendly-scanner")
		}
	}
	if c.SIP.LogInterval < time.Second {
		v.add("sip.log_interval", "%s; must be at least 1s", c.SIP.LogInterval)
	}
	v.sipTLS(c)

	v.dialAddr("trunk.address", c.Trunk.Address)
	v.transport("trunk.transport", c.Trunk.Transport, false)
	v.srtpMode("trunk.srtp", c.Trunk.SRTP, false)
	v.largeOver("trunk.large_over", c.Trunk.LargeOver, false)
	if c.Trunk.Password != "" && c.Trunk.Username == "" {
		v.add("trunk.username", "empty while trunk.password is set; set both to answer digest challenges, or neither")
	}

	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if r.Match == "" {
			v.add(key+".match", "empty; give a regular expression for the dialled number (e.g. \"^9\\\\d+$\")")
		} else if _, err := regexp.Compile(r.Match); err != nil {
			v.add(key+".match", "%q is not a regular expression: %v", r.Match, err)
		}
		if msg := checkSIPURI(r.Target); msg != "" {
			v.add(key+".target", "%q %s (e.g. \"sip:{number}@192.0.2.10:5060\")", r.Target, msg)
		}
		v.transport(key+".transport", r.Transport, true)
		v.srtpMode(key+".srtp", r.SRTP, true)
		v.largeOver(key+".large_over", r.LargeOver, true)
	}

	if c.Calls.MaxSessions < 1 {
		v.add("calls.max_sessions", "%d; must be at least 1", c.Calls.MaxSessions)
	}
	if c.Calls.MaxPerSource < 0 {
		v.add("calls.max_per_source", "%d; must be 0 (no limit) or more", c.Calls.MaxPerSource)
	}
	v.duration("calls.retry_after", c.Calls.RetryAfter)
	if c.Calls.RetryAfter%time.Second != 0 {
		v.add("calls.retry_after", "%s; must be whole seconds (Retry-After counts seconds)", c.Calls.RetryAfter)
	}
	if c.Calls.RingTimeout <= 0 {
		v.add("calls.ring_timeout", "%s; must be more than 0 (e.g. \"60s\")", c.Calls.RingTimeout)
	}
	v.duration("calls.ended_retention", c.Calls.EndedRetention)
	for i, ip := range append(append([]string{}, c.Listen.ICEIPs...), c.Listen.NAT1To1IPs...) {
		if _, err := netip.ParseAddr(ip); err != nil {
			key := "listen.ice_ips"
			if i >= len(c.Listen.ICEIPs) {
				key = "listen.nat_1to1_ips"
			}
			v.add(key, "%q is not an IP address", ip)
		}
	}
	if c.Listen.UDPPorts != "" {
		if lo, hi, err := ParsePortRange(c.Listen.UDPPorts); err != nil || lo < 1024 || hi > 65535 || lo > hi {
			v.add("listen.udp_ports", "%q; want LO-HI within 1024-65535, or empty for any port", c.Listen.UDPPorts)
		}
	}
	if c.Listen.SinglePort != 0 && (c.Listen.SinglePort < 1024 || c.Listen.SinglePort > 65535) {
		v.add("listen.single_port", "%d; want 0 (off) or a port within 1024-65535", c.Listen.SinglePort)
	}
	if c.Listen.ICETimeout < time.Second {
		v.add("listen.ice_timeout", "%s; must be at least 1s", c.Listen.ICETimeout)
	}
	if c.Calls.HoldDirection != "sendonly" && c.Calls.HoldDirection != "inactive" {
		v.add("calls.hold_direction", "%q; must be one of: sendonly, inactive", c.Calls.HoldDirection)
	}
	if !oneOf(c.Calls.PartyRefer, PartyReferPolicies) {
		v.add("calls.party_refer", "%q is not a REFER policy (allowed: %s)", c.Calls.PartyRefer, strings.Join(PartyReferPolicies, ", "))
	}
	if c.Calls.TransferTimeout <= 0 {
		v.add("calls.transfer_timeout", "%s; must be more than 0 (e.g. \"30s\")", c.Calls.TransferTimeout)
	}
	v.duration("calls.transfer_grace", c.Calls.TransferGrace)
	for i, h := range c.Calls.TransferHosts {
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil && !policy.ValidHostname(h) {
			v.add(fmt.Sprintf("calls.transfer_hosts[%d]", i), "%q is not an IP address or host name (no port, no scheme; e.g. 192.0.2.10, pbx.example.com)", h)
		}
	}
	if c.Calls.MinSE < 90*time.Second || c.Calls.MinSE%time.Second != 0 {
		v.add("calls.min_se", "%s; must be whole seconds, at least 90s (RFC 4028 5)", c.Calls.MinSE)
	}
	if c.Calls.SessionTimer != 0 && (c.Calls.SessionTimer < c.Calls.MinSE || c.Calls.SessionTimer%time.Second != 0) {
		v.add("calls.session_timer", "%s; must be 0 (no session timer of callctl's own) or whole seconds, at least calls.min_se (%s)", c.Calls.SessionTimer, c.Calls.MinSE)
	}
	if c.Calls.DTMFDuration < 40*time.Millisecond || c.Calls.DTMFDuration > 5*time.Second {
		v.add("calls.dtmf_duration", "%s; must be between 40ms and 5s", c.Calls.DTMFDuration)
	}
	if c.Calls.DTMFGap < 20*time.Millisecond || c.Calls.DTMFGap > 5*time.Second {
		v.add("calls.dtmf_gap", "%s; must be between 20ms and 5s", c.Calls.DTMFGap)
	}

	ip, err := netip.ParseAddr(c.Media.IP)
	if err != nil {
		v.add("media.ip", "%q is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)", c.Media.IP)
	}
	if c.Media.Advertise != "" {
		if _, err := netip.ParseAddr(c.Media.Advertise); err != nil {
			v.add("media.advertise", "%q is not an IP address (it is written into SDP c= lines)", c.Media.Advertise)
		}
	} else if err == nil && ip.IsUnspecified() {
		v.add("media.advertise", "empty while media.ip is %s; give the address peers should send RTP to", c.Media.IP)
	}
	if _, _, err := ParsePortRange(c.Media.RTPPorts); err != nil {
		v.add("media.rtp_ports", "%v", err)
	}
	v.duration("media.port_rest", c.Media.PortRest)
	v.duration("media.timeout", c.Media.Timeout)
	v.duration("media.hold_timeout", c.Media.HoldTimeout)
	if _, err := media.ParseLatching(c.Media.Latching); err != nil {
		v.add("media.latching", "%q is not a latching mode (allowed: %s, %s)", c.Media.Latching, media.LatchStrictName, media.LatchNATName)
	}

	if !oneOf(c.Media.SRTPInbound, srtpInbound) {
		v.add("media.srtp_inbound", "%q is not an inbound SRTP policy (allowed: %s)", c.Media.SRTPInbound, strings.Join(srtpInbound, ", "))
	}
	if len(c.Media.SRTPSuites) == 0 {
		v.add("media.srtp_suites", "empty; list at least one of %s", strings.Join(srtpSuites, ", "))
	}
	for i, s := range c.Media.SRTPSuites {
		if !oneOf(s, srtpSuites) {
			v.add(fmt.Sprintf("media.srtp_suites[%d]", i), "%q is not a supported crypto-suite (allowed: %s)", s, strings.Join(srtpSuites, ", "))
		}
	}

	v.listenAddr("api.listen", c.API.Listen)

	if !oneOf(c.Log.Level, logLevels) {
		v.add("log.level", "%q is not a level (allowed: %s)", c.Log.Level, strings.Join(logLevels, ", "))
	}
	if !oneOf(c.Log.Format, logFormats) {
		v.add("log.format", "%q is not a format (allowed: %s)", c.Log.Format, strings.Join(logFormats, ", "))
	}

	v.duration("shutdown.drain_timeout", c.Shutdown.DrainTimeout)
	v.cluster(c)

	return errors.Join(v.errs...)
}

// ParsePortRange parses an inclusive "LO-HI" RTP port range. LO must be
// even and HI odd, so the range holds whole RTP (even) / RTCP (odd) pairs,
// and both must lie within 1024-65535 with LO < HI.
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, errLo := strconv.Atoi(strings.TrimSpace(a))
	hi, errHi := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case !ok || errLo != nil || errHi != nil:
		return 0, 0, fmt.Errorf("%q is not a port range; write LO-HI, e.g. 20000-29999", s)
	case lo < minRTPPort || hi > maxRTPPort:
		return 0, 0, fmt.Errorf("%q is outside %d-%d", s, minRTPPort, maxRTPPort)
	case lo >= hi:
		return 0, 0, fmt.Errorf("%q: LO must be below HI", s)
	case lo%2 != 0 || hi%2 != 1:
		return 0, 0, fmt.Errorf("%q: LO must be even and HI odd so the range holds whole RTP/RTCP port pairs (e.g. 20000-29999)", s)
	}
	return lo, hi, nil
}

type validator struct{ errs []error }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) duration(key string, d time.Duration) {
	if d < 0 {
		v.add(key, "%s is negative; must be 0 or more", d)
	}
}

// SRTP settings (session.ParseSRTPOffer, session.ParseSRTPInbound and
// media.ParseSRTPSuite read them).
var (
	srtpModes   = []string{"off", "best-effort", "mandatory"}
	srtpInbound = []string{"accept", "require", "refuse"}
	srtpSuites  = []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"}
)

func (v *validator) srtpMode(key, m string, emptyOK bool) {
	if m == "" && emptyOK {
		return
	}
	if !oneOf(m, srtpModes) {
		v.add(key, "%q is not an SRTP mode (allowed: %s)", m, strings.Join(srtpModes, ", "))
	}
}

// largeOverModes are how a request too large for UDP may travel
// (sip.LargeOverTCP, sip.LargeOverUDP).
var largeOverModes = []string{"tcp", "udp"}

func (v *validator) largeOver(key, m string, emptyOK bool) {
	if m == "" && emptyOK {
		return
	}
	if !oneOf(m, largeOverModes) {
		v.add(key, "%q is not a way for large requests to travel (allowed: %s)", m, strings.Join(largeOverModes, ", "))
	}
}

func (v *validator) transport(key, t string, emptyOK bool) {
	if t == "" && emptyOK {
		return
	}
	if !oneOf(t, dialTransports) {
		v.add(key, "%q is not a transport (allowed: %s)", t, strings.Join(dialTransports, ", "))
	}
}

// listenAddr checks a local bind address: host:port, the host may be empty
// (all interfaces) and the port may be 0 (any free port).
func (v *validator) listenAddr(key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, "%q is not host:port (e.g. 127.0.0.1:5070, [::1]:5070, :5070)", addr)
		return
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil && !policy.ValidHostname(host) {
		v.add(key, "%q: %q is not an IP address or host name", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(key, "%q: port %q is not a number in 0-65535", addr, port)
	}
}

// dialAddr checks a remote address: host:port with both present.
func (v *validator) dialAddr(key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		v.add(key, "%q is not host:port (e.g. 192.0.2.10:5060, pbx.example.com:5060)", addr)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && !policy.ValidHostname(host) {
		v.add(key, "%q: %q is not an IP address or host name", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add(key, "%q: port %q is not a number in 1-65535", addr, port)
	}
}

// host checks a bare host: an IP address or a host name, no port.
func (v *validator) host(key, h string) {
	if _, err := netip.ParseAddr(h); err != nil && !policy.ValidHostname(h) {
		v.add(key, "%q is not an IP address or host name (no port)", h)
	}
}

// parsePrefix accepts a CIDR prefix or a bare address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkSIPURI is a light check of a route target:
// "sip:[user@]host[:port][;params]". It returns "" if the target looks
// right, else what is wrong with it.
func checkSIPURI(target string) string {
	rest, ok := strings.CutPrefix(target, "sip:")
	if !ok {
		return "does not start with \"sip:\""
	}
	rest = strings.ReplaceAll(rest, "{number}", "0")
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	var host, port string
	hasPort := false
	if strings.HasPrefix(rest, "[") { // [IPv6]:port
		end := strings.Index(rest, "]")
		if end < 0 {
			return "has no valid host"
		}
		host = rest[1:end]
		if _, err := netip.ParseAddr(host); err != nil {
			return "has no valid host"
		}
		if after := rest[end+1:]; after != "" {
			if port, hasPort = strings.CutPrefix(after, ":"); !hasPort {
				return "has no valid host"
			}
		}
	} else {
		host, port, hasPort = strings.Cut(rest, ":")
		if _, err := netip.ParseAddr(host); err != nil && !policy.ValidHostname(host) {
			return "has no valid host"
		}
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has a port that is not a number in 1-65535"
		}
	}
	return ""
}

// PartyReferPolicies are the values of calls.party_refer.
var PartyReferPolicies = []string{"perform", "relay", "refuse"}

func oneOf(s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}
