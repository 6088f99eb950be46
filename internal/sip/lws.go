package sip

import (
	"reflect"

	gosip "github.com/emiago/sipgo/sip"
)

// sipgo's header parsers read "host:5060 ;branch=x" as a Via without a
// host and "<sip:a@b>; tag=x" as a From without a tag, yet RFC 3261 25.1
// lets linear white space stand around every separator (SEMI, EQUAL, COMMA,
// SLASH, COLON are SWS x SWS), and line folding (7.3.1) leaves exactly that
// behind. parser hands those parsers values with such white space removed,
// so an odd but valid message means what its plain form means.

// untouched are the headers whose value is taken verbatim: Call-ID is
// compared byte for byte (RFC 3261 20.8), the numbers are trimmed by sipgo.
var untouched = map[string]bool{"i": true, "call-id": true, "max-forwards": true, "l": true, "content-length": true}

// parser is the sipgo parser callctl reads every message with: sipgo's own
// with the structured headers' values tightened first.
var parser = newParser()

func newParser() *gosip.Parser {
	m := map[string]gosip.HeaderParser{}
	for name, p := range gosip.DefaultHeadersParser() {
		if untouched[name] {
			m[name] = p
			continue
		}
		m[name] = tightened(p)
	}
	return gosip.NewParser(gosip.WithHeadersParsers(m))
}

// parseMessage parses one whole message (a datagram) with parser.
func parseMessage(data []byte) (gosip.Message, error) { return parser.ParseSIP(data) }

// tightened wraps p so it sees the value without separator white space.
// sipgo splits a comma-separated header by calling p on what follows the
// index p reports in its comma error: that index is mapped back to the
// value sipgo holds, so the split falls where it would have.
func tightened(p gosip.HeaderParser) gosip.HeaderParser {
	return func(name []byte, value string) (gosip.Header, error) {
		tight, orig := tighten(value)
		h, err := p(name, tight)
		if err == nil {
			return h, nil
		}
		return h, remapComma(err, func(i int) int {
			switch {
			case orig == nil && i >= 0 && i < len(value):
				return i // tight was value itself
			case i >= 0 && i < len(orig):
				return orig[i]
			}
			return len(value)
		})
	}
}

// remapComma returns sipgo's "comma detected" error (an unexported int type
// holding the comma's index) with its index mapped by f; any other error as
// it is.
func remapComma(err error, f func(int) int) error {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Int || v.Type().Name() != "errComaDetected" {
		return err
	}
	out := reflect.New(v.Type()).Elem()
	out.SetInt(int64(f(int(v.Int()))))
	e, ok := out.Interface().(error)
	if !ok {
		return err
	}
	return e
}

// tighten drops runs of SP and HTAB next to a separator (; = , / :) or at
// either end, and makes other runs one space, outside quoted strings and
// <...> (a URI holds no white space; a quoted display name keeps its own).
// orig[i] is the index in s of tight's byte i.
func tighten(s string) (tight string, orig []int) {
	// Most values come tight already: nothing is allocated until the first
	// byte that changes (b nil meanwhile: the output so far is s[:i]), and
	// an unchanged value is returned as it is, with orig nil (the
	// identity).
	var b []byte
	diverge := func(i int) {
		if b != nil {
			return
		}
		b = make([]byte, i, len(s))
		copy(b, s[:i])
		orig = make([]int, i, len(s))
		for k := range orig {
			orig[k] = k
		}
	}
	quoted, escaped, angle := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				quoted = false
			}
		case angle:
			angle = c != '>'
		case c == ' ' || c == '\t':
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			outLen, last := i, byte(0)
			if b != nil {
				outLen = len(b)
			}
			if outLen > 0 {
				if b != nil {
					last = b[len(b)-1]
				} else {
					last = s[i-1]
				}
			}
			space := outLen > 0 && j < len(s) && !isSeparator(last) && !isSeparator(s[j])
			if b == nil && !(space && j == i+1 && c == ' ') {
				diverge(i)
			}
			if b != nil && space {
				b = append(b, ' ')
				orig = append(orig, i)
			}
			i = j - 1
			continue
		case c == '"':
			quoted = true
		case c == '<':
			angle = true
		}
		if b != nil {
			b = append(b, c)
			orig = append(orig, i)
		}
	}
	if b == nil {
		return s, nil
	}
	return string(b), orig
}

func isSeparator(c byte) bool {
	return c == ';' || c == '=' || c == ',' || c == '/' || c == ':'
}
