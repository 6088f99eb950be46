package session

import (
	"strconv"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// A party's BYE may say why the call ended (RFC 3326 Reason, e.g.
// `Q.850;cause=16;text="Normal call clearing"`); callctl carries it to the
// other party's BYE. The header is the network's: only a well-formed value
// of a protocol callctl knows is carried, rebuilt from its parts, bounded.

const (
	maxReasonInput = 512 // longer header values are not looked at
	maxReasonText  = 128 // the text= part carried, in bytes
)

// carriedReason is the first well-formed reason-value of the request's
// Reason headers, rebuilt, or "" when there is none.
func carriedReason(req *gosip.Request) string {
	if req == nil {
		return ""
	}
	for _, h := range req.GetHeaders("Reason") {
		if r, ok := parseReason(h.Value()); ok {
			return r
		}
	}
	return ""
}

// parseReason reads the first reason-value of a Reason header value
// (RFC 3326 2: protocol *(SEMI reason-params)) and returns it rebuilt as
// `PROTO;cause=N[;text="..."]`. It accepts the protocols SIP (cause a
// status code, 100-699) and Q.850 (cause 0-127), requires the cause, keeps
// a quoted text (escapes kept, control characters refused, at most
// maxReasonText bytes) and drops other parameters.
func parseReason(v string) (string, bool) {
	if len(v) > maxReasonInput {
		return "", false
	}
	params, ok := splitOutsideQuotes(firstValue(v), ';')
	if !ok || len(params) < 2 {
		return "", false
	}
	proto := strings.TrimSpace(params[0])
	var lo, hi int
	switch strings.ToUpper(proto) {
	case "SIP":
		proto, lo, hi = "SIP", 100, 699
	case "Q.850":
		proto, lo, hi = "Q.850", 0, 127
	default:
		return "", false
	}
	cause, text := -1, ""
	for _, p := range params[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		k, val = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val)
		switch k {
		case "cause":
			if cause >= 0 || val == "" || len(val) > 3 {
				return "", false
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < lo || n > hi || strings.TrimLeft(val, "0123456789") != "" {
				return "", false
			}
			cause = n
		case "text":
			t, ok := unquote(val)
			if !ok || text != "" {
				return "", false
			}
			text = t
		}
	}
	if cause < 0 {
		return "", false
	}
	out := proto + ";cause=" + strconv.Itoa(cause)
	if text != "" {
		out += `;text="` + quotedText(text) + `"`
	}
	return out, true
}

// firstValue is v up to its first comma outside a quoted string (a Reason
// header may list several reason-values).
func firstValue(v string) string {
	parts, ok := splitOutsideQuotes(v, ',')
	if !ok || len(parts) == 0 {
		return ""
	}
	return parts[0]
}

// splitOutsideQuotes splits s at sep where it is not inside a quoted string
// (RFC 3261 25.1, backslash escapes); ok is false for an unclosed quote.
func splitOutsideQuotes(s string, sep byte) ([]string, bool) {
	var parts []string
	inQuote, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case inQuote && c == '\\':
			esc = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if inQuote {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// unquote reads a quoted-string: its content unescaped, printable only, at
// most maxReasonText bytes.
func unquote(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	body := v[1 : len(v)-1]
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' {
			i++
			if i == len(body) {
				return "", false
			}
			c = body[i]
		} else if c == '"' {
			return "", false
		}
		if c < 0x20 || c == 0x7f {
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() > maxReasonText {
		return "", false
	}
	return b.String(), true
}
