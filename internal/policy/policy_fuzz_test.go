package policy

import (
	"strings"
	"testing"
)

// FuzzCheck feeds transfer and forward targets, as clients send them, to
// the policy: whatever the input, Check does not panic, and what it lets
// through is a dial string or a SIP URI to an allowed host with nothing
// that could steer the call elsewhere (no maddr, no URI headers).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"2001", "+4930123", "sip:2001@pbx.example", "sip:2001@127.0.0.1:5060;transport=tcp",
		"sip:2001@[::1]:5060", "sips:2001@pbx.example", "sip:2001@evil.example", "sip:2001@pbx.example;maddr=evil.example",
		"sip:2001@pbx.example?Route=%3Csip:evil.example%3E", "sip:a:b@pbx.example", "tel:+4930123", "sip:@pbx.example",
		"sip:2001@pbx.example:99999", "SIP:2001@PBX.EXAMPLE", "sip:2001@pbx.example:", " 2001 ", "",
	} {
		f.Add(s)
	}
	targets := New([]string{"pbx.example", "127.0.0.1", "::1"})
	f.Fuzz(func(t *testing.T, in string) {
		got, err := targets.Check("target", in)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Field != "target" || e.Msg == "" {
				t.Fatalf("Check(%q) error %#v; want an *Error naming the field", in, err)
			}
			return
		}
		if got.Number == "" || strings.IndexFunc(got.Number, func(r rune) bool { return !numberRune(r) }) >= 0 {
			t.Fatalf("Check(%q) let through the number %q", in, got.Number)
		}
		if got.URI == nil {
			if got.Raw != got.Number {
				t.Fatalf("Check(%q) = number %q but raw %q", in, got.Number, got.Raw)
			}
			return
		}
		u := got.URI
		if !targets.Allows(u.Host) {
			t.Fatalf("Check(%q) let through host %q, not on the list", in, u.Host)
		}
		if u.Headers.Length() > 0 {
			t.Fatalf("Check(%q) let through URI headers", in)
		}
		for _, kv := range u.UriParams {
			if !strings.EqualFold(kv.K, "transport") {
				t.Fatalf("Check(%q) let through the URI parameter %q", in, kv.K)
			}
		}
		// What callctl sends on must pass again, to the same host.
		again, err := targets.Check("target", u.String())
		if err != nil || again.URI == nil || canonHost(again.URI.Host) != canonHost(u.Host) {
			t.Fatalf("Check(%q) gave %q, which checks as %+v, %v", in, u.String(), again, err)
		}
	})
}
