package listen

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// MaxSDP bounds an offer Start takes and an answer it gives. A browser's
// offer for two audio sections is a few KiB, pion's answer under two; the
// bound keeps what a client (or another node, for a listen-in it
// forwards) sends from costing more than a request body may.
const MaxSDP = 16 << 10

// CheckOffer reports whether sdp can be a listen-in offer at all: within
// MaxSDP, valid SDP (RFC 8866), with at least two audio sections to
// receive on. It knows nothing of the call's codecs, so a node can check
// an offer before passing it to the node that carries the call, which
// checks it again, with the codecs, in Start.
func CheckOffer(offerSDP string) error {
	_, err := receivable(offerSDP)
	return err
}

// CheckAnswer reports whether sdp can be an answer of Start's: within
// MaxSDP, valid SDP with at least two audio sections. A node checks what
// the node carrying the call answered before handing it to its client.
func CheckAnswer(answerSDP string) error {
	if len(answerSDP) > MaxSDP {
		return fmt.Errorf("listen: answer of %d bytes; at most %d: %w", len(answerSDP), MaxSDP, ErrInvalidArgument)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answerSDP); err != nil {
		return fmt.Errorf("listen: answer is not valid SDP: %v: %w", err, ErrInvalidArgument)
	}
	n := 0
	for _, md := range parsed.MediaDescriptions {
		if md.MediaName.Media == "audio" {
			n++
		}
	}
	if n < 2 {
		return fmt.Errorf("listen: answer has %d audio sections; want 2: %w", n, ErrInvalidArgument)
	}
	return nil
}

// ValidID reports whether id has the form of a listener's id (what Start
// returns: 16 lower-case hex digits), so a malformed one from a client is
// refused before it travels anywhere.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range []byte(id) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// receivable parses an offer and returns its audio sections that the
// browser receives on (not sendonly, not inactive, not rejected with port
// 0), failing unless there are at least two.
func receivable(offerSDP string) ([]*sdp.MediaDescription, error) {
	if len(offerSDP) > MaxSDP {
		return nil, fmt.Errorf("listen: offer of %d bytes; at most %d: %w", len(offerSDP), MaxSDP, ErrInvalidArgument)
	}
	parsed, err := (&webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}).Unmarshal()
	if err != nil {
		return nil, fmt.Errorf("listen: offer is not valid SDP: %v: %w", err, ErrInvalidArgument)
	}
	var out []*sdp.MediaDescription
	for _, md := range parsed.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		if _, sendonly := md.Attribute("sendonly"); sendonly {
			continue
		}
		if _, inactive := md.Attribute("inactive"); inactive {
			continue
		}
		out = append(out, md)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("listen: the offer has %d audio sections to receive on; want 2 (recvonly: caller, then callee): %w", len(out), ErrInvalidArgument)
	}
	return out, nil
}

// checkOffer gives a clear error for an offer that cannot carry the two
// tracks, before pion gives a vague one.
func checkOffer(offerSDP string, specs [2]codecSpec) error {
	mds, err := receivable(offerSDP)
	if err != nil {
		return err
	}
	for i, md := range mds[:2] {
		if !offersCodec(md.MediaName.Formats, md.Attributes, specs[i]) {
			return fmt.Errorf("listen: the offer's %s audio section lacks %s, the codec the %s sends: %w",
				[]string{"first", "second"}[i], specs[i].name, parties[i], ErrInvalidArgument)
		}
	}
	return nil
}

// offersCodec reports whether an m= section lists the codec, by a=rtpmap
// or by its static payload type (RFC 3551 Table 4).
func offersCodec(formats []string, attrs []sdp.Attribute, spec codecSpec) bool {
	for _, a := range attrs {
		if a.Key != "rtpmap" {
			continue
		}
		// "<pt> <name>/<clock>[/<channels>]"
		var pt int
		var enc string
		if _, err := fmt.Sscanf(a.Value, "%d %s", &pt, &enc); err != nil {
			continue
		}
		if name, _, _ := strings.Cut(enc, "/"); strings.EqualFold(name, spec.name) && slices.Contains(formats, fmt.Sprint(pt)) {
			return true
		}
	}
	return spec.pt < 96 && spec.name != "opus" && slices.Contains(formats, fmt.Sprint(int(spec.pt)))
}
