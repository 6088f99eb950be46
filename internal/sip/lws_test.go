package sip

import (
	"testing"

	gosip "github.com/emiago/sipgo/sip"
)

func TestTightenDropsSeparatorWhiteSpaceOutsideQuotesAndURIs(t *testing.T) {
	for in, want := range map[string]string{
		"SIP / 2.0 / UDP 127.0.0.1 : 4000 ;branch = z9hG4bK1": "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1",
		"\"a ; b\"   <sip:a@b> ; tag = x":                     "\"a ; b\" <sip:a@b>;tag=x",
		"\"q\\\" ;\" <sip:a@b>;tag=x":                         "\"q\\\" ;\" <sip:a@b>;tag=x",
		"  application / sdp ; charset = utf-8  ":             "application/sdp;charset=utf-8",
		"1\t OPTIONS": "1 OPTIONS",
	} {
		got, orig := tighten(in)
		if got != want {
			t.Errorf("tighten(%q) = %q; want %q", in, got, want)
		}
		if orig == nil && got != in {
			t.Errorf("tighten(%q) changed the value but says it did not (orig nil)", in)
		}
		for i := range got {
			j := i
			if orig != nil {
				j = orig[i]
			}
			if got[i] != ' ' && in[j] != got[i] {
				t.Errorf("tighten(%q): byte %d %q maps to %q at %d", in, i, got[i], in[j], j)
			}
		}
	}
}

// tightenReference is tighten as it was first written, building its output
// byte by byte for every value: tighten, which allocates only for a value
// it changes, must give the same.
func tightenReference(s string) (tight string, orig []int) {
	b := make([]byte, 0, len(s))
	orig = make([]int, 0, len(s))
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
			if len(b) > 0 && j < len(s) && !isSeparator(b[len(b)-1]) && !isSeparator(s[j]) {
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
		b = append(b, c)
		orig = append(orig, i)
	}
	return string(b), orig
}

// FuzzTighten: tighten's output and index map equal the reference's for
// any value (orig nil meaning the identity).
func FuzzTighten(f *testing.F) {
	for _, s := range []string{"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1", "\"a b\" <sip:a@b> ;tag=x", " x", "x ", "a  b", "a\tb",
		"1 INVITE", "<sip:a b>", "\"\\\" \" ; x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, orig := tighten(s)
		want, worig := tightenReference(s)
		if got != want {
			t.Fatalf("tighten(%q) = %q; the reference gives %q", s, got, want)
		}
		if orig == nil {
			if got != s {
				t.Fatalf("tighten(%q) = %q with orig nil, but the value changed", s, got)
			}
			return
		}
		if len(orig) != len(worig) {
			t.Fatalf("tighten(%q): %d indexes; the reference has %d", s, len(orig), len(worig))
		}
		for i := range orig {
			if orig[i] != worig[i] {
				t.Fatalf("tighten(%q): orig[%d] = %d; the reference says %d", s, i, orig[i], worig[i])
			}
		}
	})
}

// A folded request (RFC 3261 7.3.1) with white space before every ';'
// means what its plain form means: Via host and branch, From tag, and
// every value of a comma-separated Via.
func TestParserReadsFoldedAndSpacedHeadersAsTheirPlainForm(t *testing.T) {
	msg := "OPTIONS sip:1000@127.0.0.1 SIP/2.0\r\n" +
		"Via  :   SIP/2.0/UDP 127.0.0.1:4000\r\n   ;branch=z9hG4bK1 , SIP / 2.0 / TCP [::1]:5 ; branch=z9hG4bK2\r\n" +
		"Max-Forwards: 70\r\nTo:\r\n <sip:1000@127.0.0.1>\r\n" +
		"From   : \"Torture\r\n  folded\" <sip:t@127.0.0.1:4000>\r\n  ;tag=abc\r\n" +
		"Call-ID: c1\r\nCSeq:   1\r\n\t OPTIONS\r\nContent-Length: 0\r\n\r\n"
	m, err := parseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*gosip.Request)
	vias := req.GetHeaders("Via")
	if len(vias) != 2 {
		t.Fatalf("%d Via values; want 2: %v", len(vias), vias)
	}
	for i, want := range []struct{ host, branch string }{{"127.0.0.1", "z9hG4bK1"}, {"::1", "z9hG4bK2"}} {
		v := vias[i].(*gosip.ViaHeader)
		if b, _ := v.Params.Get("branch"); v.Host != want.host || b != want.branch {
			t.Errorf("Via %d: host %q branch %q; want %q %q", i, v.Host, b, want.host, want.branch)
		}
	}
	if tag, _ := req.From().Params.Get("tag"); tag != "abc" || req.From().DisplayName != "Torture folded" {
		t.Errorf("From %q tag %q; want display name \"Torture folded\", tag abc", req.From().DisplayName, tag)
	}
	if cs := req.CSeq(); cs.SeqNo != 1 || cs.MethodName != gosip.OPTIONS {
		t.Errorf("CSeq %v; want 1 OPTIONS", cs)
	}
	if rej := checkRequest(req); rej != nil {
		t.Errorf("checkRequest refused it: %d %s", rej.status, rej.warning)
	}
}

func TestUnescapeUnreservedDecodesOnlyWhatStaysTheSameURI(t *testing.T) {
	for in, want := range map[string]string{
		"%32%30%30%31": "2001",
		"10%30%300":    "10000",
		"a%2Eb%7e":     "a.b~",
		"user%40host":  "user%40host", // @ is reserved: still escaped
		"%3A%3b":       "%3A%3b",
		"50%":          "50%",
		"%4":           "%4",
		"%zz1":         "%zz1",
	} {
		if got := unescapeUnreserved(in); got != want {
			t.Errorf("unescapeUnreserved(%q) = %q; want %q", in, got, want)
		}
	}
}
