package media

import (
	"strings"
	"testing"
)

// A party's new SDP differs from its old one only in what callctl's rewrite
// hides (address, ports, o= line, s=): nothing for the other party.
func TestSameSDPForPeerIgnoresTransportAndOriginButNotMediaChanges(t *testing.T) {
	edit := func(body []byte, oldNew ...string) []byte {
		s := string(body)
		for i := 0; i+1 < len(oldNew); i += 2 {
			if !strings.Contains(s, oldNew[i]) {
				t.Fatalf("no %q in %q", oldNew[i], s)
			}
			s = strings.ReplaceAll(s, oldNew[i], oldNew[i+1])
		}
		return []byte(s)
	}
	for _, c := range []struct {
		name string
		next []byte
		same bool
	}{
		{"identical", asteriskSDP, true},
		{"new o= version", edit(asteriskSDP, "1715087211 1715087211", "1715087211 1715087212"), true},
		{"new address and port", edit(asteriskSDP, "192.0.2.10", "192.0.2.99", "m=audio 10000", "m=audio 12000"), true},
		{"new session name", edit(asteriskSDP, "s=Asterisk", "s=PBX"), true},
		{"ptime changed", edit(asteriskSDP, "a=ptime:20", "a=ptime:30"), true},
		{"sendonly (hold)", edit(asteriskSDP, "a=sendrecv", "a=sendonly"), false},
		{"c=0.0.0.0 hold", edit(asteriskSDP, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0"), false},
		{"codec removed", edit(asteriskSDP, "RTP/AVP 0 8 101", "RTP/AVP 0 101"), false},
		{"codec order", edit(asteriskSDP, "RTP/AVP 0 8 101", "RTP/AVP 8 0 101"), false},
		{"telephone-event gone", edit(asteriskSDP, "RTP/AVP 0 8 101", "RTP/AVP 0 8"), false},
		{"telephone-event renumbered", edit(asteriskSDP, " 101", " 96", ":101", ":96"), false},
		{"fmtp changed", edit(asteriskSDP, "a=fmtp:101 0-16", "a=fmtp:101 0-15"), false},
		{"stream rejected", edit(asteriskSDP, "m=audio 10000", "m=audio 0"), false},
		{"video added", append(append([]byte{}, asteriskSDP...), crlf("m=video 5000 RTP/AVP 31\na=rtpmap:31 H261/90000\n")...), false},
		{"rtcp-mux added", append(append([]byte{}, asteriskSDP...), crlf("a=rtcp-mux\n")...), false},
		{"not SDP", []byte("hello"), false},
	} {
		if got := SameSDPForPeer(asteriskSDP, c.next); got != c.same {
			t.Errorf("%s: SameSDPForPeer = %v, want %v", c.name, got, c.same)
		}
		if got := SameSDPForPeer(c.next, asteriskSDP); got != c.same {
			t.Errorf("%s (reversed): SameSDPForPeer = %v, want %v", c.name, got, c.same)
		}
	}
}

func TestSameForPeerComparesCodecNamesCaseInsensitively(t *testing.T) {
	a := MediaInfo{Direction: SendRecv, TelephoneEvent: -1, Codecs: []Codec{{PayloadType: 0, Name: "PCMU", ClockRate: 8000, Channels: 1}}}
	b := a
	b.Codecs = []Codec{{PayloadType: 0, Name: "pcmu", ClockRate: 8000, Channels: 1}}
	if !SameForPeer(a, b) {
		t.Errorf("PCMU and pcmu differ for SameForPeer; encoding names are case-insensitive (RFC 4855 §3)")
	}
	b.Codecs[0].ClockRate = 16000
	if SameForPeer(a, b) {
		t.Errorf("a clock rate change is not a change for SameForPeer")
	}
}

// FuzzSameSDPForPeer: never panics, is reflexive on every body ParseSDP
// accepts, and symmetric.
func FuzzSameSDPForPeer(f *testing.F) {
	for _, seed := range [][]byte{asteriskSDP, baresipSDP, sippSDP, twoStreamsSDP, oldHoldSDP, rejectedAudioSDP, nil} {
		f.Add(seed, sippSDP)
		f.Add(seed, seed)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ab, ba := SameSDPForPeer(a, b), SameSDPForPeer(b, a)
		if ab != ba {
			t.Fatalf("not symmetric: %v one way, %v the other", ab, ba)
		}
		if _, err := ParseSDP(a); err == nil && !SameSDPForPeer(a, a) {
			t.Fatalf("a body that parses is not the same as itself")
		}
	})
}
