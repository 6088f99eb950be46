package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
)

const (
	offerWithEvents = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
	answerWithout = "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

// An offerer with telephone-event keeps it in the answer it gets when the
// other party left it out; otherwise the answer passes as it is.
func TestKeepEventsAddsTelephoneEventOnlyWhereTheOffererHadIt(t *testing.T) {
	offer, err := media.ParseSDP([]byte(offerWithEvents))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := media.ParseSDP([]byte(answerWithout))
	if err != nil {
		t.Fatal(err)
	}
	out := keepEvents([]byte(answerWithout), offer, answer)
	got, err := media.ParseSDP(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.TelephoneEvent != 101 {
		t.Errorf("answer to the offerer has telephone-event %d; want 101\n%s", got.TelephoneEvent, out)
	}
	if out := keepEvents([]byte(answerWithout), answer, answer); !bytes.Equal(out, []byte(answerWithout)) {
		t.Errorf("an offer without telephone-event changed the answer:\n%s", out)
	}
	if out := keepEvents([]byte(offerWithEvents), offer, offer); !bytes.Equal(out, []byte(offerWithEvents)) {
		t.Errorf("an answer with telephone-event changed:\n%s", out)
	}
}

func TestClampToneKeepsAPartysDurationPlayable(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		time.Millisecond: 40 * time.Millisecond, 160 * time.Millisecond: 160 * time.Millisecond, time.Hour: 10 * time.Second,
	} {
		if got := clampTone(in); got != want {
			t.Errorf("clampTone(%v) = %v; want %v", in, got, want)
		}
	}
}
