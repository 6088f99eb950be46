package session

import (
	"strings"
	"testing"
)

func TestParseReasonCarriesOnlyWellFormedValues(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`Q.850;cause=16;text="Normal call clearing"`, `Q.850;cause=16;text="Normal call clearing"`, true},
		{`q.850 ; cause=17`, `Q.850;cause=17`, true},
		{`SIP;cause=486;text="Busy Here"`, `SIP;cause=486;text="Busy Here"`, true},
		{`SIP;cause=200;text="a;b, c"`, `SIP;cause=200;text="a;b, c"`, true},
		{`Q.850;cause=16;text="x";foo=bar, SIP;cause=200`, `Q.850;cause=16;text="x"`, true},
		{`SIP;text="say \"hi\""`, "", false},                  // no cause
		{`Q.850;cause=999`, "", false},                        // out of range
		{`SIP;cause=99`, "", false},                           // not a status
		{`SIP;cause=+200`, "", false},                         // not digits
		{`SIP;cause=200;cause=486`, "", false},                // twice
		{`X-Vendor;cause=1`, "", false},                       // unknown protocol
		{`Q.850;cause=16;text="open`, "", false},              // unclosed quote
		{"Q.850;cause=16;text=\"a\r\nX-Evil: 1\"", "", false}, // control characters
		{`Q.850;cause=16;text=bare`, "", false},               // unquoted text
		{`Q.850;cause=16;text="` + strings.Repeat("a", 200) + `"`, "", false},
		{strings.Repeat("Q.850;cause=16;", 50), "", false}, // too long
	} {
		got, ok := parseReason(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseReason(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseReason(f *testing.F) {
	for _, s := range []string{`Q.850;cause=16;text="Normal call clearing"`, `SIP;cause=200;text="a\"b"`, `SIP;cause=486`, `"`, `;;;`, `Q.850;cause=16;text="\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := parseReason(in)
		if !ok {
			return
		}
		if strings.ContainsAny(out, "\r\n\x00") || len(out) > 40+2*maxReasonText {
			t.Fatalf("parseReason(%q) = %q: not a safe header value", in, out)
		}
		// What callctl sends is itself well-formed and stable.
		if again, ok := parseReason(out); !ok || again != out {
			t.Fatalf("parseReason(%q) = %q, which reparses as %q, %v", in, out, again, ok)
		}
	})
}
