// Package policy decides where callctl may send a call on a client's
// behalf: which transfer and forward targets it will dial itself or hand to
// a party in a REFER's Refer-To (RFC 3515 2.1). A number goes through the
// routing table (the PBX trunk by default) and is always routable; a SIP
// URI is taken only for an allowed host, so a client cannot send a caller,
// or callctl's own leg, to any SIP host on the internet.
//
// The API checks a target here before the operation runs and the session
// layer checks it again before anything is sent (defence in depth); both use
// one *Targets.
package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// ErrNotAllowed is matched (errors.Is) by every *Error: the target is well
// formed but policy does not let calls go there.
var ErrNotAllowed = errors.New("target not allowed by policy")

// Schemes are the URI schemes a target may have. sips: is refused: a
// transfer or forward target is handed to parties and hops callctl does
// not control (RFC 3261 26.2.2 would require TLS on every one of them), and
// a sips: target handed on as if it were sip: would claim a protection the
// call does not get. A number routed over TLS (routes[].transport tls)
// reaches its target over TLS.
var Schemes = []string{"sip"}

// NumberChars describes what a dial-string target may hold.
const NumberChars = "digits, letters and * # + - . _"

// Error is a refused target. Field is the request field ("target"); Msg is
// the whole sentence, naming what is allowed. Allowed, when set, lists the
// forms the field may take (for a target that is empty or no dial string).
// NotAllowed tells a policy refusal (the target is well formed but names a
// host calls may not go to; Hosts are the allowed ones) from a malformed
// target.
type Error struct {
	Field      string
	Target     string
	Msg        string
	Allowed    []string
	NotAllowed bool
	Hosts      []string
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrNotAllowed) hold for policy refusals.
func (e *Error) Is(target error) bool { return target == ErrNotAllowed && e.NotAllowed }

// Target is a checked transfer or forward target.
type Target struct {
	// Raw is the target as given, without surrounding white space.
	Raw string
	// Number is the dial string, or the user part of a SIP URI: what a
	// client's targets patterns are matched against.
	Number string
	// URI is the parsed SIP URI; nil for a number, which the routing table
	// turns into a URI.
	URI *gosip.Uri
}

// Targets is the transfer/forward policy: the hosts SIP URI targets may
// name. Its methods are safe for concurrent use; it does not change once
// made.
type Targets struct {
	hosts []string // canonical (see canonHost), in configuration order
	shown []string // as configured, for messages
}

// New returns the policy allowing SIP URI targets on these hosts (IP
// addresses or DNS names, compared as written: no DNS lookup). An empty
// list allows no SIP URI target; numbers are always allowed.
func New(hosts []string) *Targets {
	t := &Targets{}
	for _, h := range hosts {
		c := canonHost(h)
		if c == "" || slices.Contains(t.hosts, c) {
			continue
		}
		t.hosts = append(t.hosts, c)
		t.shown = append(t.shown, strings.TrimSpace(h))
	}
	return t
}

// DefaultHosts is the host list used when calls.transfer_hosts is empty:
// the trunk's host and the host of every route target, the places callctl
// sends calls to anyway. trunkAddress is host:port; route targets are SIP
// URIs with "{number}" in them.
func DefaultHosts(trunkAddress string, routeTargets []string) []string {
	var out []string
	if host, _, err := net.SplitHostPort(trunkAddress); err == nil && host != "" {
		out = append(out, host)
	} else if trunkAddress != "" {
		out = append(out, trunkAddress)
	}
	for _, rt := range routeTargets {
		var u gosip.Uri
		if err := gosip.ParseUri(strings.ReplaceAll(rt, "{number}", "0"), &u); err == nil && u.Host != "" {
			out = append(out, strings.Trim(u.Host, "[]"))
		}
	}
	return out
}

// Hosts returns the allowed hosts as configured.
func (t *Targets) Hosts() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.shown)
}

// Allows reports whether host (an IP address or DNS name, IPv6 with or
// without brackets) is on the list.
func (t *Targets) Allows(host string) bool {
	return t != nil && slices.Contains(t.hosts, canonHost(host))
}

// Check parses and checks a target given in field: a dial string (NumberChars)
// or sip:user@host[:port][;transport=udp|tcp] with an allowed host. It
// returns the target or an *Error naming what is wrong and what is allowed.
// A nil *Targets allows no SIP URI.
func (t *Targets) Check(field, target string) (Target, error) {
	raw := strings.TrimSpace(target)
	if raw == "" {
		return Target{}, &Error{Field: field, Target: target, Msg: field + " is empty",
			Allowed: []string{"a dial string such as 2001 or +4930123", "a SIP URI such as sip:2001@pbx.example"}}
	}
	if scheme, _, ok := strings.Cut(raw, ":"); ok && isScheme(scheme) {
		return t.checkURI(field, raw, strings.ToLower(scheme))
	}
	for i, r := range raw {
		if !numberRune(r) {
			return Target{}, &Error{Field: field, Target: target,
				Msg:     fmt.Sprintf("%s %q has %q at position %d", field, target, r, i+1),
				Allowed: []string{NumberChars, "a SIP URI"}}
		}
	}
	return Target{Raw: raw, Number: raw}, nil
}

func (t *Targets) checkURI(field, raw, scheme string) (Target, error) {
	bad := func(msg string) (Target, error) {
		return Target{}, &Error{Field: field, Target: raw, Msg: fmt.Sprintf("%s %q %s", field, raw, msg)}
	}
	if !slices.Contains(Schemes, scheme) {
		return bad(fmt.Sprintf("has the scheme %s:, which callctl does not send calls to (allowed schemes: %s)",
			scheme, strings.Join(Schemes, ", ")))
	}
	var u gosip.Uri
	if err := gosip.ParseUri(raw, &u); err != nil || u.Host == "" {
		return bad("is not a valid SIP URI (write sip:user@host[:port])")
	}
	host := strings.Trim(u.Host, "[]")
	switch {
	case u.User == "":
		return bad("has no user part (write sip:user@host[:port])")
	case strings.IndexFunc(u.User, func(r rune) bool { return !numberRune(r) }) >= 0:
		return bad("has a user part with characters other than " + NumberChars)
	case u.Password != "":
		return bad("carries a password; give sip:user@host[:port]")
	case !validHost(host):
		return bad("has no valid host (an IP address or DNS name)")
	case u.Port < 0 || u.Port > 65535 || strings.Contains(raw, u.Host+":") && u.Port == 0:
		return bad("has a port that is not a number in 1-65535")
	case u.Headers.Length() > 0:
		// RFC 3261 19.1.5: headers in a Refer-To URI end up in the request
		// the transferee sends (a Route there would steer it anywhere).
		return bad("carries URI headers (?...); give sip:user@host[:port]")
	}
	for _, kv := range u.UriParams {
		// RFC 3261 19.1.1: maddr and friends override the host the request
		// goes to, so only transport is taken.
		if !strings.EqualFold(kv.K, "transport") {
			return bad(fmt.Sprintf("has the URI parameter %q (allowed: transport)", kv.K))
		}
		if v := strings.ToLower(kv.V); v != "udp" && v != "tcp" {
			return bad(fmt.Sprintf("has transport=%s (allowed: udp, tcp)", kv.V))
		}
	}
	if !t.Allows(host) {
		allowed := "none are configured: set calls.transfer_hosts"
		if hs := t.Hosts(); len(hs) > 0 {
			allowed = strings.Join(hs, ", ")
		}
		return Target{}, &Error{Field: field, Target: raw, NotAllowed: true, Hosts: t.Hosts(),
			Msg: fmt.Sprintf("%s %q: host %s is not one callctl sends calls to (allowed hosts: %s)", field, raw, host, allowed)}
	}
	return Target{Raw: raw, Number: u.User, URI: &u}, nil
}

// isScheme reports whether s is an RFC 3986 3.1 scheme: a letter, then
// letters, digits, + - or ".". A dial string never holds ':'.
func isScheme(s string) bool {
	if s == "" || !isLetter(rune(s[0])) {
		return false
	}
	for _, r := range s {
		if !isLetter(r) && !(r >= '0' && r <= '9') && !strings.ContainsRune("+-.", r) {
			return false
		}
	}
	return true
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

func numberRune(r rune) bool {
	return r >= '0' && r <= '9' || isLetter(r) || strings.ContainsRune("*#+-._", r)
}

// canonHost is the form hosts are compared in: an IP address in its
// canonical text, a DNS name lower-cased without a trailing dot.
func canonHost(h string) string {
	h = strings.Trim(strings.TrimSpace(h), "[]")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// validHost reports whether h is an IP address or a DNS name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return ValidHostname(h)
}

// ValidHostname reports whether h is a DNS name (RFC 1123 labels of
// letters, digits and hyphens, 63 bytes at most, 253 in all).
func ValidHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !isLetter(r) && !(r >= '0' && r <= '9') && r != '-' {
				return false
			}
		}
	}
	return true
}
