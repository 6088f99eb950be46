package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckTakesNumbersAndSIPURIsOnAllowedHostsOnly(t *testing.T) {
	p := New([]string{"127.0.0.1", "PBX.example.com.", "[::1]", "127.0.0.1"})
	if got, want := p.Hosts(), []string{"127.0.0.1", "PBX.example.com.", "[::1]"}; !slices.Equal(got, want) {
		t.Errorf("Hosts() = %q; want %q (duplicates dropped, as configured)", got, want)
	}
	for _, c := range []struct {
		target, number, host string
	}{
		{" 2999 ", "2999", ""},
		{"+4930123*#", "+4930123*#", ""},
		{"sip:2999@127.0.0.1", "2999", "127.0.0.1"},
		{"sip:2999@127.0.0.1:5080;transport=TCP", "2999", "127.0.0.1"},
		{"SIP:2999@pbx.EXAMPLE.com", "2999", "pbx.EXAMPLE.com"},
		{"sip:2999@pbx.example.com.", "2999", "pbx.example.com."},
		{"sip:2999@[::1]:5070", "2999", "[::1]"},
	} {
		got, err := p.Check("target", c.target)
		if err != nil {
			t.Errorf("Check(%q): %v; want it accepted", c.target, err)
			continue
		}
		if got.Number != c.number || got.Raw != strings.TrimSpace(c.target) {
			t.Errorf("Check(%q) = number %q raw %q; want %q", c.target, got.Number, got.Raw, c.number)
		}
		if (got.URI == nil) != (c.host == "") || got.URI != nil && got.URI.Host != c.host {
			t.Errorf("Check(%q) URI %v; want host %q", c.target, got.URI, c.host)
		}
	}
}

func TestCheckRefusesTargetsOutsidePolicyNamingWhatIsAllowed(t *testing.T) {
	p := New([]string{"127.0.0.1", "pbx.example.com"})
	for _, c := range []struct {
		target     string
		notAllowed bool
		want       []string // in the message
	}{
		{"sip:2999@203.0.113.9", true, []string{"203.0.113.9", "allowed hosts: 127.0.0.1, pbx.example.com"}},
		{"sip:2999@evil.example.com:5060", true, []string{"evil.example.com", "allowed hosts: 127.0.0.1, pbx.example.com"}},
		{"sip:2999@127.0.0.2", true, []string{"allowed hosts"}},
		{"sips:2999@127.0.0.1", false, []string{"sips:", "allowed schemes: sip"}},
		{"tel:+4930123", false, []string{"tel:", "allowed schemes: sip"}},
		{"http://127.0.0.1/", false, []string{"http:", "allowed schemes: sip"}},
		{"sip:2999@127.0.0.1;maddr=203.0.113.9", false, []string{"maddr", "allowed: transport"}},
		{"sip:2999@127.0.0.1?Route=%3Csip:203.0.113.9%3E", false, []string{"URI headers"}},
		{"sip:2999@127.0.0.1;transport=tls", false, []string{"transport=tls", "udp, tcp"}},
		{"sip:127.0.0.1", false, []string{"no user part"}},
		{"sip:a:secret@127.0.0.1", false, []string{"password"}},
		{"sip:2999@127.0.0.1:0", false, []string{"port"}},
		{"sip:2999@127.0.0.1:70000", false, []string{"port"}},
		{"sip:2999@bad host", false, []string{"no valid host"}},
		{"sip:29 99@127.0.0.1", false, []string{"user part"}},
		{"sip:", false, []string{"not a valid SIP URI"}},
		{"", false, []string{"target is empty"}},
		{"20 01", false, []string{`' ' at position 3`}},
	} {
		_, err := p.Check("target", c.target)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Check(%q) = %v; want a *policy.Error", c.target, err)
			continue
		}
		if errors.Is(err, ErrNotAllowed) != c.notAllowed || pe.Field != "target" {
			t.Errorf("Check(%q): Is(ErrNotAllowed) = %v, field %q; want %v, target", c.target, errors.Is(err, ErrNotAllowed), pe.Field, c.notAllowed)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Check(%q) = %q; want it to name %q", c.target, err, w)
			}
		}
	}
}

func TestNoHostsAllowsNumbersButNoURI(t *testing.T) {
	for _, p := range []*Targets{nil, New(nil)} {
		if _, err := p.Check("target", "2001"); err != nil {
			t.Errorf("%v: Check(2001): %v; want numbers always allowed", p, err)
		}
		_, err := p.Check("target", "sip:2001@127.0.0.1")
		if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "calls.transfer_hosts") {
			t.Errorf("%v: Check(sip URI) = %v; want not allowed, naming calls.transfer_hosts", p, err)
		}
	}
}

func TestDefaultHostsAreTheTrunkAndRouteTargets(t *testing.T) {
	got := DefaultHosts("10.0.0.1:5060", []string{"sip:{number}@192.0.2.20:5060", "sip:{number}@[2001:db8::1]:5060;transport=tcp", "sip:pbx2.example.com"})
	want := []string{"10.0.0.1", "192.0.2.20", "2001:db8::1", "pbx2.example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultHosts = %q; want %q", got, want)
	}
	p := New(got)
	for _, h := range []string{"10.0.0.1", "[2001:db8:0::1]", "PBX2.example.com"} {
		if !p.Allows(h) {
			t.Errorf("Allows(%q) = false; want true", h)
		}
	}
}
