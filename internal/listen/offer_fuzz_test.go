package listen

import (
	"strings"
	"testing"
)

const fuzzOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n"

// An offer or answer of any bytes (a client's, or another node's passing
// one on) is refused or taken without a panic; what CheckOffer takes is
// within MaxSDP and has two sections to receive on, and what the full
// check with the call's codecs takes, CheckOffer takes too (a node that
// forwards an offer never refuses one the owner would accept).
func FuzzListenSDP(f *testing.F) {
	f.Add(fuzzOffer)
	f.Add(strings.ReplaceAll(fuzzOffer, "recvonly", "inactive"))
	f.Add("v=0\r\n")
	f.Add("")
	pcmu, _ := lookupCodec("PCMU")
	f.Fuzz(func(t *testing.T, sdp string) {
		mds, err := receivable(sdp)
		if err == nil && (len(sdp) > MaxSDP || len(mds) < 2) {
			t.Fatalf("took a %d-byte offer with %d sections", len(sdp), len(mds))
		}
		if (CheckOffer(sdp) == nil) != (err == nil) {
			t.Fatal("CheckOffer and receivable disagree")
		}
		if checkOffer(sdp, [2]codecSpec{pcmu, pcmu}) == nil && err != nil {
			t.Fatalf("the full check took an offer CheckOffer refuses: %v", err)
		}
		if CheckAnswer(sdp) == nil && len(sdp) > MaxSDP {
			t.Fatalf("took a %d-byte answer", len(sdp))
		}
	})
}

// CheckOffer's refusals name what is wrong.
func TestCheckOfferSaysWhatIsWrong(t *testing.T) {
	for _, c := range []struct{ sdp, want string }{
		{"", "0 audio sections"},
		{"v=0\r\nm=audio", "not valid SDP"},
		{strings.Repeat("x", MaxSDP+1), "at most 16384"},
		{strings.ReplaceAll(fuzzOffer, "recvonly", "sendonly"), "0 audio sections to receive on"},
	} {
		if err := CheckOffer(c.sdp); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckOffer(%.20q…) = %v; want an error saying %q", c.sdp, err, c.want)
		}
	}
	if err := CheckOffer(fuzzOffer); err != nil {
		t.Errorf("CheckOffer(a browser's offer) = %v", err)
	}
	if !ValidID(newID()) || ValidID("l1") || ValidID("00112233AABBCCDD") {
		t.Error("ValidID does not tell Start's ids from others")
	}
}
