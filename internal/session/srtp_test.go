package session

import (
	"strings"
	"testing"
)

func TestSRTPSettingsParseTheirNamesAndNameTheAllowedOnes(t *testing.T) {
	for in, want := range map[string]SRTPOffer{"": SRTPOff, "off": SRTPOff, "best-effort": SRTPBestEffort, "mandatory": SRTPMandatory} {
		if got, err := ParseSRTPOffer(in); err != nil || got != want {
			t.Errorf("ParseSRTPOffer(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]SRTPInbound{"": InboundAccept, "accept": InboundAccept, "require": InboundRequire, "refuse": InboundRefuse} {
		if got, err := ParseSRTPInbound(in); err != nil || got != want {
			t.Errorf("ParseSRTPInbound(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseSRTPOffer("on"); err == nil || !strings.Contains(err.Error(), "off, best-effort, mandatory") {
		t.Errorf("ParseSRTPOffer(on) = %v, want the allowed values named", err)
	}
	if _, err := ParseSRTPInbound("yes"); err == nil || !strings.Contains(err.Error(), "accept, require, refuse") {
		t.Errorf("ParseSRTPInbound(yes) = %v, want the allowed values named", err)
	}
}
