package media

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// WithTelephoneEvent returns an SDP answer with telephone-event (RFC 4733
// §7) added to its relayed audio stream as payload type pt at rate Hz
// (0 for 8000), keys only (fmtp 0-15), when the answer does not have it
// already. callctl sends such an answer to a party that offered
// telephone-event when the other party's answer left it out: callctl
// itself takes that party's events and hands the other party SIP INFO
// instead, so the party may still send and receive RFC 4733 (RFC 3264 §6.1:
// an answer may list any type of the offer). The body is returned unchanged
// when its audio stream is rejected (port 0), already has telephone-event,
// or uses pt for something else; the o= line is untouched.
func WithTelephoneEvent(body []byte, pt uint8, rate uint32) ([]byte, error) {
	if pt >= 128 {
		return nil, fmt.Errorf("media: telephone-event payload type %d is over 127: %w", pt, ErrInvalidArgument)
	}
	if rate == 0 {
		rate = defaultClockRate
	}
	sd, err := unmarshalSDP(body)
	if err != nil {
		return nil, err
	}
	audio, err := audioIndex(sd)
	if err != nil {
		return nil, err
	}
	md := sd.MediaDescriptions[audio]
	if md.MediaName.Port.Value == 0 {
		return body, nil
	}
	cs, err := codecs(md)
	if err != nil {
		return nil, err
	}
	if telephoneEvent(cs) >= 0 {
		return body, nil
	}
	ptText := strconv.Itoa(int(pt))
	for _, f := range md.MediaName.Formats {
		if strings.TrimSpace(f) == ptText {
			return body, nil
		}
	}
	md.MediaName.Formats = append(md.MediaName.Formats, ptText)
	// Beside the other rtpmaps, before the direction and the rest.
	at := len(md.Attributes)
	for i := len(md.Attributes) - 1; i >= 0; i-- {
		if k := md.Attributes[i].Key; k == "rtpmap" || k == "fmtp" {
			at = i + 1
			break
		}
	}
	add := []sdp.Attribute{
		sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/%d", pt, rate)),
		sdp.NewAttribute("fmtp", ptText+" 0-15"),
	}
	md.Attributes = append(md.Attributes[:at], append(add, md.Attributes[at:]...)...)
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("media: SDP add telephone-event: %w", err)
	}
	return out, nil
}
