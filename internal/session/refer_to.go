package session

import (
	"errors"
	"net/url"
	"strings"
)

// A party's REFER names its target in Refer-To (RFC 3515 2.1), which is the
// network's: parseReferTo checks it before callctl acts on it. Errors never
// echo the input (they go into a Warning header).

// maxReferTo bounds a Refer-To value; a dial string or a Replaces with
// a Call-ID and two tags fits easily.
const maxReferTo = 1024

// referTo is a checked Refer-To.
type referTo struct {
	scheme string // "sip", "sips" or "tel"
	number string // the user part (sip:, sips:) or the number (tel:)
	host   string // sip:/sips: only
	// replaces names the dialog the target is to replace (RFC 3891), for
	// an attended transfer; nil for a blind one.
	replaces *dialogID
}

// dialogID is a dialog as a Replaces header names it (RFC 3891 6.1).
type dialogID struct {
	callID, toTag, fromTag string
	earlyOnly              bool
}

var (
	errReferToEmpty   = errors.New("Refer-To is empty")
	errReferToLong    = errors.New("Refer-To is too long")
	errReferToBracket = errors.New("Refer-To has an unterminated <")
	errReferToScheme  = errors.New("Refer-To must be a sip:, sips: or tel: URI")
	errReferToUser    = errors.New("Refer-To names no user or number")
	errReferToHeaders = errors.New("Refer-To carries a URI header other than Replaces")
	errReferToEscape  = errors.New("Refer-To has a bad %-escape")
	errReplaces       = errors.New("Refer-To has a malformed Replaces (RFC 3891 6.1: call-id;to-tag=…;from-tag=…)")
)

// parseReferTo reads a Refer-To header value: a name-addr (optionally with
// a display name and header parameters) or an addr-spec (RFC 3515 2.1).
func parseReferTo(v string) (referTo, error) {
	var rt referTo
	if len(v) > maxReferTo {
		return rt, errReferToLong
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return rt, errReferToEmpty
	}
	uri := v
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return rt, errReferToBracket
		}
		uri = v[i+1 : i+j]
	} else if strings.ContainsAny(v, " \t\r\n;?") {
		// An addr-spec cannot carry parameters or headers unambiguously
		// (RFC 3261 20: they would be the header's); refuse rather than guess.
		return rt, errReferToHeaders
	}
	if strings.ContainsAny(uri, " \t\r\n<>\"") {
		return rt, errReferToScheme
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return rt, errReferToScheme
	}
	rt.scheme = strings.ToLower(scheme)
	if rt.scheme != "sip" && rt.scheme != "sips" && rt.scheme != "tel" {
		return rt, errReferToScheme
	}
	rest, hdrs, hasHdrs := strings.Cut(rest, "?")
	if hasHdrs {
		if rt.scheme == "tel" {
			return rt, errReferToHeaders
		}
		for _, h := range strings.Split(hdrs, "&") {
			name, val, _ := strings.Cut(h, "=")
			// RFC 3261 19.1.5 lets a URI carry any header into the request
			// it starts; only Replaces (RFC 3891) is taken.
			if !strings.EqualFold(name, "Replaces") || rt.replaces != nil {
				return rt, errReferToHeaders
			}
			dec, err := url.PathUnescape(val)
			if err != nil {
				return rt, errReferToEscape
			}
			d, err := parseReplaces(dec)
			if err != nil {
				return rt, err
			}
			rt.replaces = &d
		}
	}
	rest, _, _ = strings.Cut(rest, ";") // URI parameters are not used
	if rt.scheme == "tel" {
		// RFC 3966: visual separators are not part of the number.
		rt.number = strings.Map(func(r rune) rune {
			if strings.ContainsRune("-.()", r) {
				return -1
			}
			return r
		}, rest)
	} else {
		user, host, ok := strings.Cut(rest, "@")
		if !ok {
			return rt, errReferToUser
		}
		if u, _, hasPw := strings.Cut(user, ":"); hasPw {
			user = u
		}
		dec, err := url.PathUnescape(user)
		if err != nil {
			return rt, errReferToEscape
		}
		rt.number, rt.host = dec, host
	}
	// The number goes into logs, events and a Warning: no white space or
	// control characters (a %0D%0A would split a header).
	if rt.number == "" || strings.IndexFunc(rt.number, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return rt, errReferToUser
	}
	return rt, nil
}

// parseReplaces reads a Replaces value (RFC 3891 6.1): callid, then to-tag
// and from-tag (both required), and the optional early-only flag.
func parseReplaces(v string) (dialogID, error) {
	var d dialogID
	parts := strings.Split(v, ";")
	d.callID = strings.TrimSpace(parts[0])
	if d.callID == "" || strings.ContainsAny(d.callID, " \t\r\n") {
		return d, errReplaces
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "to-tag":
			d.toTag = strings.TrimSpace(val)
		case "from-tag":
			d.fromTag = strings.TrimSpace(val)
		case "early-only":
			d.earlyOnly = true
		}
	}
	if d.toTag == "" || d.fromTag == "" || strings.ContainsAny(d.toTag+d.fromTag, " \t\r\n") {
		return d, errReplaces
	}
	return d, nil
}
