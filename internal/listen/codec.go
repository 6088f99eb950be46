package listen

import (
	"fmt"
	"strings"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/webrtc/v4"
)

// codecSpec is how a call's codec is offered to the browser unchanged.
type codecSpec struct {
	name  string // as in Track.Codec
	cap   webrtc.RTPCodecCapability
	pt    webrtc.PayloadType // registered with the MediaEngine; the browser's own numbers win in the answer
	clock uint32             // RTP clock rate
}

// codecs are those a browser decodes and callctl relays (RFC 3551 Table 4;
// RFC 7587 for Opus, whose RTP clock is 48000 Hz whatever it encodes; G.722
// runs its RTP clock at 8000 Hz for historical reasons).
var codecs = []codecSpec{
	{name: "PCMU", cap: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, pt: 0, clock: 8000},
	{name: "PCMA", cap: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, pt: 8, clock: 8000},
	{name: "G722", cap: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeG722, ClockRate: 8000}, pt: 9, clock: 8000},
	{name: "opus", cap: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}, pt: 111, clock: 48000},
}

// codecNames lists the codec names Track.Codec accepts, for error messages.
func codecNames() string {
	names := make([]string, len(codecs))
	for i, c := range codecs {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// lookupCodec finds a codec by its SDP encoding name, case-insensitively
// (RFC 4855 §3: media subtype names are case-insensitive).
func lookupCodec(name string) (codecSpec, error) {
	for _, c := range codecs {
		if strings.EqualFold(c.name, name) {
			return c, nil
		}
	}
	return codecSpec{}, fmt.Errorf("codec %q cannot be passed to a browser unchanged; want one of %s: %w",
		name, codecNames(), ErrInvalidArgument)
}

// TrackFor describes what a party sends to its endpoint e, from SDP: own is
// the party's latest SDP body (its offer or answer, as media.ParseSDP read
// it), answer the answer that concluded the last offer/answer exchange
// between the parties (for the initial INVITE, the callee's 200 OK). The
// codec is the first in answer that a browser can play and own lists too
// (RFC 3264 §6.1: the answer's order is the preference both sides send
// by); the payload types are own's.
func TrackFor(e *media.Endpoint, own, answer media.MediaInfo) (Track, error) {
	for _, a := range answer.Codecs {
		spec, err := lookupCodec(a.Name)
		if err != nil {
			continue
		}
		for _, c := range own.Codecs {
			if strings.EqualFold(c.Name, spec.name) && (c.ClockRate == 0 || c.ClockRate == spec.clock) {
				return Track{Endpoint: e, Codec: spec.name, PayloadType: c.PayloadType, ClockRate: spec.clock,
					TelephoneEvent: own.TelephoneEvent}, nil
			}
		}
	}
	return Track{}, fmt.Errorf("listen: the call's codecs (%s) include none a browser plays unchanged (%s): %w",
		describeCodecs(answer.Codecs), codecNames(), ErrInvalidArgument)
}

func describeCodecs(cs []media.Codec) string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.Name == "" {
			names = append(names, fmt.Sprint(c.PayloadType))
		} else {
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
