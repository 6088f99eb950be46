package demo

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// direction is an SDP media direction attribute (RFC 3264 §5.1).
type direction string

const (
	sendRecv direction = "sendrecv"
	sendOnly direction = "sendonly"
	recvOnly direction = "recvonly"
	inactive direction = "inactive"
)

// answer is the direction that answers an offer of d (RFC 3264 §6.1): a
// phone put on hold with sendonly answers recvonly, and so on.
func (d direction) answer() direction {
	switch d {
	case sendOnly:
		return recvOnly
	case recvOnly:
		return sendOnly
	}
	return d
}

// sends reports whether a phone whose side of the stream is d sends audio.
func (d direction) sends() bool { return d == sendRecv || d == sendOnly }

// telephoneEventType is the dynamic payload type the phones offer for
// RFC 4733 telephone-event, so callctl may send them DTMF in the RTP.
const telephoneEventType = 101

// remoteMedia is what a phone needs from the other side's SDP.
type remoteMedia struct {
	addr      netip.AddrPort // where to send RTP; invalid when on hold by c=0.0.0.0
	dir       direction      // the other side's direction
	pcmu      bool           // PCMU is among the payload types
	telephone bool           // telephone-event/8000 is offered, as type telephoneEventType
}

// parseSDP reads the first audio stream of an SDP body (RFC 4566).
func parseSDP(body []byte) (remoteMedia, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return remoteMedia{}, fmt.Errorf("demo: bad SDP: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		rm := remoteMedia{dir: sendRecv, pcmu: slices.Contains(md.MediaName.Formats, strconv.Itoa(pcmuType))}
		conn := sd.ConnectionInformation
		if md.ConnectionInformation != nil {
			conn = md.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			return remoteMedia{}, errors.New("demo: SDP has no c= line for its audio")
		}
		ip, err := netip.ParseAddr(conn.Address.Address)
		if err != nil {
			return remoteMedia{}, fmt.Errorf("demo: SDP c= address %q: %w", conn.Address.Address, err)
		}
		port := md.MediaName.Port.Value
		if !ip.IsUnspecified() && port > 0 && port < 65536 {
			rm.addr = netip.AddrPortFrom(ip, uint16(port))
		}
		for _, a := range append(slices.Clone(sd.Attributes), md.Attributes...) {
			switch d := direction(a.Key); d {
			case sendRecv, sendOnly, recvOnly, inactive:
				rm.dir = d // a media-level attribute, read last, wins
			}
			if a.Key == "rtpmap" && strings.EqualFold(strings.TrimSpace(a.Value), strconv.Itoa(telephoneEventType)+" telephone-event/8000") {
				rm.telephone = slices.Contains(md.MediaName.Formats, strconv.Itoa(telephoneEventType))
			}
		}
		return rm, nil
	}
	return remoteMedia{}, errors.New("demo: SDP has no audio stream")
}

// localMedia builds a phone's SDP bodies; version counts its o= line up on
// every new body (RFC 3264 §8).
type localMedia struct {
	session uint64
	version uint64
	port    int
}

// body is the phone's SDP: PCMU, and telephone-event when withEvents, at
// 127.0.0.1:port, in direction dir.
func (l *localMedia) body(dir direction, withEvents bool) []byte {
	l.version++
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d %d IN IP4 127.0.0.1\r\ns=callctl demo phone\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", l.session, l.version)
	if withEvents {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP %d %d\r\n", l.port, pcmuType, telephoneEventType)
		fmt.Fprintf(&b, "a=rtpmap:%d PCMU/8000\r\na=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n", pcmuType, telephoneEventType, telephoneEventType)
	} else {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP %d\r\na=rtpmap:%d PCMU/8000\r\n", l.port, pcmuType, pcmuType)
	}
	fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", dir)
	return []byte(b.String())
}
