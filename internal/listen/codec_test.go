package listen

import (
	"errors"
	"testing"

	"github.com/callctl/callctl/internal/media"
)

func sdpWith(t *testing.T, m string, attrs ...string) media.MediaInfo {
	t.Helper()
	body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP " + m + "\r\n"
	for _, a := range attrs {
		body += "a=" + a + "\r\n"
	}
	info, err := media.ParseSDP([]byte(body))
	if err != nil {
		t.Fatalf("ParseSDP: %v", err)
	}
	return info
}

func TestTrackForTakesTheAnswersCodecWithThePartysOwnPayloadTypes(t *testing.T) {
	offer := sdpWith(t, "96 0 8 101", "rtpmap:96 opus/48000/2", "rtpmap:101 telephone-event/8000")
	tests := []struct {
		name   string
		own    media.MediaInfo
		answer media.MediaInfo
		want   Track
	}{
		{name: "caller, answer picks PCMU", own: offer, answer: sdpWith(t, "0 100", "rtpmap:100 telephone-event/8000"),
			want: Track{Codec: "PCMU", PayloadType: 0, ClockRate: 8000, TelephoneEvent: 101}},
		{name: "callee, its own answer", own: sdpWith(t, "8 100", "rtpmap:100 telephone-event/8000"), answer: sdpWith(t, "8 100", "rtpmap:100 telephone-event/8000"),
			want: Track{Codec: "PCMA", PayloadType: 8, ClockRate: 8000, TelephoneEvent: 100}},
		{name: "opus under the party's own number", own: offer, answer: sdpWith(t, "111 0", "rtpmap:111 OPUS/48000/2"),
			want: Track{Codec: "opus", PayloadType: 96, ClockRate: 48000, TelephoneEvent: 101}},
		{name: "a codec a browser lacks is passed over", own: sdpWith(t, "18 0"), answer: sdpWith(t, "18 0"),
			want: Track{Codec: "PCMU", PayloadType: 0, ClockRate: 8000, TelephoneEvent: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TrackFor(nil, tt.own, tt.answer)
			if err != nil || got != tt.want {
				t.Errorf("TrackFor = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := TrackFor(nil, sdpWith(t, "18"), sdpWith(t, "18")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("TrackFor with G.729 only: err = %v, want ErrInvalidArgument", err)
	}
}
