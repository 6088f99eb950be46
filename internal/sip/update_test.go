package sip

import (
	"testing"

	gosip "github.com/emiago/sipgo/sip"
)

func TestAllowsMethodReadsAnAllowList(t *testing.T) {
	for _, c := range []struct {
		allow string
		m     gosip.RequestMethod
		want  bool
	}{
		{"INVITE, ACK, BYE, UPDATE", gosip.UPDATE, true},
		{"INVITE,ACK,BYE,update", gosip.UPDATE, true},
		{"INVITE, ACK, BYE", gosip.UPDATE, false},
		{"INVITE, ACK, BYE, UPDATES", gosip.UPDATE, false},
		{"", gosip.UPDATE, false},
	} {
		if got := AllowsMethod(c.allow, c.m); got != c.want {
			t.Errorf("AllowsMethod(%q, %s) = %v, want %v", c.allow, c.m, got, c.want)
		}
	}
	if !AllowsMethod(Allowed(), gosip.UPDATE) {
		t.Errorf("callctl's own Allow %q does not list UPDATE", Allowed())
	}
}
