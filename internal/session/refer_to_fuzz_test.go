package session

import (
	"strings"
	"testing"
)

// FuzzParseReferTo drives the reader of a party's Refer-To (RFC 3515 2.1,
// RFC 3891 for Replaces), which is the network's: no input panics, and an
// accepted one is a sip:, sips: or tel: URI within the length bound naming
// a number, whose only URI header is a well-formed Replaces.
func FuzzParseReferTo(f *testing.F) {
	for _, s := range []string{
		"<sip:4000@127.0.0.1>", "sip:4000@callctl", `"Bob" <sips:4000@h;transport=tcp>;x=y`, "<tel:+1-555-0100>",
		"<sip:4000@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>", "<sip:4000@h?Replaces=abc%3Bto-tag%3D1>",
		"<sip:4000@h?Subject=x>", "<sip:4000@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Route=x>", "<http://x>", "<sip:h>",
		"<sip:4000@h", "", "   ", "<sip:%zz@h>", "sip:4000@h;maddr=x", "<sip:user:pw@h>", "<:>", "<sip:@h>",
		"<sip:4000@h?Replaces=%3Bto-tag%3D1%3Bfrom-tag%3D2>", strings.Repeat("a", 2000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		rt, err := parseReferTo(v)
		if err != nil {
			return
		}
		if len(v) > maxReferTo {
			t.Fatalf("parseReferTo accepted %d bytes; the bound is %d", len(v), maxReferTo)
		}
		if rt.scheme != "sip" && rt.scheme != "sips" && rt.scheme != "tel" {
			t.Fatalf("parseReferTo(%q): scheme %q", v, rt.scheme)
		}
		if rt.number == "" || strings.ContainsAny(rt.number, " \t\r\n\x00") {
			t.Fatalf("parseReferTo(%q): number %q", v, rt.number)
		}
		if d := rt.replaces; d != nil {
			if d.callID == "" || d.toTag == "" || d.fromTag == "" {
				t.Fatalf("parseReferTo(%q): Replaces %+v lacks a part", v, *d)
			}
			if strings.ContainsAny(d.callID+d.toTag+d.fromTag, " \t\r\n") {
				t.Fatalf("parseReferTo(%q): Replaces %+v holds white space", v, *d)
			}
		}
	})
}

func TestParseReferTo(t *testing.T) {
	for _, c := range []struct {
		in       string
		number   string
		replaces *dialogID
		bad      bool
	}{
		{in: "<sip:4000@127.0.0.1:5060>", number: "4000"},
		{in: "sip:4000@h", number: "4000"},
		{in: `"Bob" <sip:4000@h;user=phone>;x=y`, number: "4000"},
		{in: "<tel:+1-555-0100;phone-context=x>", number: "+15550100"},
		{in: "<sip:4000@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>", number: "4000", replaces: &dialogID{callID: "abc@h", toTag: "1", fromTag: "2"}},
		{in: "<sip:4000@h?replaces=abc;to-tag=1;from-tag=2>", number: "4000", replaces: &dialogID{callID: "abc", toTag: "1", fromTag: "2"}},
		{in: "<sip:4000@h?Replaces=abc%3Bto-tag%3D1>", bad: true},
		{in: "<sip:4000@h?Subject=hi>", bad: true},
		{in: "<sip:4000@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Route=%3Csip:x%3E>", bad: true},
		{in: "<http://example.com/>", bad: true},
		{in: "<sip:example.com>", bad: true},
		{in: "<sip:4000@h", bad: true},
		{in: "<sip:40%0D%0AX:%20y@h>", bad: true},
		{in: "sip:4000@h?Replaces=x", bad: true},
		{in: "", bad: true},
		{in: "<sip:" + strings.Repeat("1", 1100) + "@h>", bad: true},
	} {
		rt, err := parseReferTo(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("parseReferTo(%q) = %+v; want an error", c.in, rt)
			}
			continue
		}
		if err != nil || rt.number != c.number {
			t.Errorf("parseReferTo(%q) = %+v, %v; want number %q", c.in, rt, err, c.number)
			continue
		}
		if (rt.replaces == nil) != (c.replaces == nil) || rt.replaces != nil && *rt.replaces != *c.replaces {
			t.Errorf("parseReferTo(%q) Replaces %+v; want %+v", c.in, rt.replaces, c.replaces)
		}
	}
}
