package demo

import (
	"net/netip"
	"strings"
	"testing"
)

// offerFrom is an SDP offer as callctl sends a phone: its own address and
// port, PCMU and telephone-event, a direction.
func offerFrom(addr, dir string) []byte {
	return []byte("v=0\r\no=callctl 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 " + addr + "\r\nt=0 0\r\n" +
		"m=audio 20002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=" + dir + "\r\n")
}

// TestPhoneAnswersHoldWithTheMirroredDirection follows RFC 3264 §6.1: a
// phone put on hold with sendonly answers recvonly and stops sending;
// inactive (or c=0.0.0.0) silences it; sendrecv resumes.
func TestPhoneAnswersHoldWithTheMirroredDirection(t *testing.T) {
	tests := []struct {
		addr, offered string
		answered      direction
		sends         bool
	}{
		{"127.0.0.1", "sendrecv", sendRecv, true},
		{"127.0.0.1", "sendonly", recvOnly, false},
		{"127.0.0.1", "recvonly", sendOnly, true},
		{"127.0.0.1", "inactive", inactive, false},
		{"0.0.0.0", "sendrecv", sendRecv, false}, // RFC 2543 hold
	}
	for _, tt := range tests {
		offer, err := parseSDP(offerFrom(tt.addr, tt.offered))
		if err != nil {
			t.Fatalf("parseSDP(%s %s): %v", tt.addr, tt.offered, err)
		}
		if !offer.pcmu || !offer.telephone {
			t.Errorf("offer %s: pcmu %v, telephone-event %v; want both", tt.offered, offer.pcmu, offer.telephone)
		}
		st := &stream{}
		st.update(offer.addr, offer.dir.answer())
		if st.sending != tt.sends {
			t.Errorf("offer %s at %s: phone sends %v; want %v", tt.offered, tt.addr, st.sending, tt.sends)
		}
		if want := netip.MustParseAddrPort("127.0.0.1:20002"); tt.addr == "127.0.0.1" && offer.addr != want {
			t.Errorf("offer %s: RTP to %v; want %v", tt.offered, offer.addr, want)
		}
		lm := localMedia{session: 9, port: 4000}
		body := lm.body(offer.dir.answer(), offer.telephone)
		if !strings.Contains(string(body), "a="+string(tt.answered)+"\r\n") {
			t.Errorf("answer to %s:\n%s\nwant a=%s", tt.offered, body, tt.answered)
		}
		back, err := parseSDP(body)
		if err != nil {
			t.Fatalf("the phone's own SDP does not parse: %v\n%s", err, body)
		}
		if back.dir != tt.answered || back.addr != netip.MustParseAddrPort("127.0.0.1:4000") || !back.pcmu || !back.telephone {
			t.Errorf("the phone's answer reads back as %+v", back)
		}
	}
}

func TestParseSDPRefusesBodiesWithoutAudio(t *testing.T) {
	for name, body := range map[string]string{
		"empty":    "",
		"no audio": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n",
		"no c=":    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
	} {
		if _, err := parseSDP([]byte(body)); err == nil {
			t.Errorf("parseSDP(%s) succeeded; want an error", name)
		}
	}
}
