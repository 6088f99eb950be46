package media

import (
	"strings"
)

// SameForPeer reports whether a party's new SDP (b) says nothing new to the
// other party compared with its previous one (a), once callctl has rewritten
// it onto its own endpoint: the same payload types with the same encodings,
// clock rates, channels and fmtp, in the same order; the same direction;
// the same telephone-event; the stream rejected or not alike; the same
// RTCP multiplexing. What the rewrite hides — the party's own connection
// address and ports, its o= line, its session name — is ignored (RFC 3264
// §8: such an offer changes only the sender's transport). A re-INVITE or
// UPDATE of that kind needs no offer on the other leg: callctl answers it
// itself and points the party's endpoint at the new address.
func SameForPeer(a, b MediaInfo) bool {
	if a.Direction != b.Direction || a.Port0 != b.Port0 || a.TelephoneEvent != b.TelephoneEvent || a.RTCPMux != b.RTCPMux {
		return false
	}
	if len(a.Codecs) != len(b.Codecs) {
		return false
	}
	for i := range a.Codecs {
		x, y := a.Codecs[i], b.Codecs[i]
		if x.PayloadType != y.PayloadType || !strings.EqualFold(x.Name, y.Name) || x.ClockRate != y.ClockRate ||
			x.Channels != y.Channels || x.Fmtp != y.Fmtp {
			return false
		}
	}
	return true
}

// SameSDPForPeer is SameForPeer on two SDP bodies, and also requires the
// same streams (m= lines of the same media, transport and formats, in the
// same order): callctl relays one audio stream but passes the others on as
// rejected lines, so an added or removed video stream is a change too. It
// returns false when either body does not parse.
func SameSDPForPeer(a, b []byte) bool {
	ia, err := ParseSDP(a)
	if err != nil {
		return false
	}
	ib, err := ParseSDP(b)
	if err != nil {
		return false
	}
	if !SameForPeer(ia, ib) {
		return false
	}
	sa, err := unmarshalSDP(a)
	if err != nil {
		return false
	}
	sb, err := unmarshalSDP(b)
	if err != nil {
		return false
	}
	if len(sa.MediaDescriptions) != len(sb.MediaDescriptions) {
		return false
	}
	for i, ma := range sa.MediaDescriptions {
		mb := sb.MediaDescriptions[i]
		if ma.MediaName.Media != mb.MediaName.Media ||
			strings.Join(ma.MediaName.Protos, "/") != strings.Join(mb.MediaName.Protos, "/") ||
			strings.Join(ma.MediaName.Formats, " ") != strings.Join(mb.MediaName.Formats, " ") ||
			(ma.MediaName.Port.Value == 0) != (mb.MediaName.Port.Value == 0) {
			return false
		}
	}
	return true
}
