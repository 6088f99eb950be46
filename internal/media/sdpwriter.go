package media

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/sdp/v3"
)

// SDPWriter rewrites the SDP bodies callctl sends on one leg so that they
// point at callctl's endpoint for that leg, under the leg's own o= line:
// the same session id for the whole dialog and a version that goes up by
// one exactly when the body changes (RFC 3264 §8). Use one SDPWriter per
// leg, for every offer and answer sent on it. It is safe for concurrent use.
type SDPWriter struct {
	username  string
	sessionID uint64

	mu      sync.Mutex
	version uint64
	last    []byte // last body written, to tell a change
	// sent is the copy of last that Rewrite returned, and sentEvents its
	// telephone-event payload type (SentTelephoneEvent).
	sent       []byte
	sentEvents int
	// crypto are callctl's a=crypto lines for this leg (SetSRTP); none
	// means plain RTP. savp says whether the audio line says RTP/SAVP(F)
	// or, for best-effort SRTP, RTP/AVP(F) with a=crypto.
	crypto []Crypto
	savp   bool
}

// SetSRTP makes every later Rewrite describe the audio stream as SRTP with
// callctl's own a=crypto lines (RFC 4568 §9.1): one line in an answer (the
// accepted tag, callctl's key), one per offered suite in an offer. With
// savp the m= line says RTP/SAVP (or RTP/SAVPF); without it RTP/AVP (or
// AVPF) with a=crypto, the "best effort" SRTP many UAs accept. The lines
// are copied.
func (w *SDPWriter) SetSRTP(lines []Crypto, savp bool) {
	w.mu.Lock()
	w.crypto, w.savp = append([]Crypto(nil), lines...), savp
	w.mu.Unlock()
}

// ClearSRTP makes later Rewrites describe plain RTP (RTP/AVP, no a=crypto).
func (w *SDPWriter) ClearSRTP() { w.SetSRTP(nil, false) }

// profileFor is the m= transport for a stream first described as proto:
// feedback (AVPF) is kept, security is the writer's.
func profileFor(proto string, secure bool) string {
	fb := strings.HasSuffix(proto, "AVPF")
	switch {
	case secure && fb:
		return "RTP/SAVPF"
	case secure:
		return "RTP/SAVP"
	case fb:
		return "RTP/AVPF"
	}
	return "RTP/AVP"
}

// NewSDPWriter returns a writer whose o= lines carry username ("-" if empty;
// spaces become "-", since o= fields are space separated).
func NewSDPWriter(username string) *SDPWriter {
	username = strings.Join(strings.Fields(username), "-")
	if username == "" {
		username = "-"
	}
	// RFC 4566 §5.2 suggests an NTP timestamp; a random id is as unique and
	// stays within 63 bits for UAs that parse it as a signed number.
	id := rand.Uint64N(1<<62) + 1
	return &SDPWriter{username: username, sessionID: id, version: id}
}

// SDPOrigin is what a writer's o= lines carry from one body to the next:
// the session id and the version of the last body (RFC 3264 §8: a new
// offer in the same session keeps the id and raises the version).
type SDPOrigin struct {
	SessionID uint64 `json:"session_id"`
	Version   uint64 `json:"version"`
}

// Origin returns the writer's o= state, to go on with it elsewhere
// (RestoreSDPWriter).
func (w *SDPWriter) Origin() SDPOrigin {
	w.mu.Lock()
	defer w.mu.Unlock()
	return SDPOrigin{SessionID: w.sessionID, Version: w.version}
}

// RestoreSDPWriter returns a writer that goes on from o, last being the
// body it last wrote: its next different body has version o.Version+1.
// A zero session id (no state) starts afresh.
func RestoreSDPWriter(username string, o SDPOrigin, last []byte) *SDPWriter {
	w := NewSDPWriter(username)
	if o.SessionID == 0 || o.SessionID >= 1<<63 || o.Version >= 1<<63 {
		return w
	}
	w.sessionID, w.version = o.SessionID, o.Version
	w.last = last
	if w.last == nil {
		w.last = []byte{} // whatever comes next is a new version
	}
	return w
}

// SessionID returns the o= session id of every body the writer produces.
func (w *SDPWriter) SessionID() uint64 { return w.sessionID }

// Rewrite returns body as callctl sends it on this leg: o= replaced by the
// writer's, every c= set to addr, the relayed audio m= line (see ParseSDP)
// set to port and a=rtcp to port+1, and every other m= line set to port 0,
// that is rejected (RFC 3264 §6). An audio line already at port 0 stays
// rejected. ICE attributes (a=candidate, a=ice-*, a=end-of-candidates,
// a=remote-candidates) and the party's a=crypto lines are removed:
// callctl's endpoint does no ICE, and terminates SRTP itself, so the audio
// line carries the writer's own keys and profile instead (SetSRTP; plain
// RTP/AVP by default). Codecs and direction attributes are kept, except
// that a c=0.0.0.0 hold (RFC 3264 §8.4) becomes a=inactive at addr.
func (w *SDPWriter) Rewrite(body []byte, addr netip.Addr, port int) ([]byte, error) {
	addr = addr.Unmap()
	if err := checkRewriteTarget(addr, port); err != nil {
		return nil, err
	}
	sd, err := unmarshalSDP(body)
	if err != nil {
		return nil, err
	}
	return w.rewrite(sd, addr, port)
}

// RewriteParsed is Rewrite of p's body, without reading it again the first
// time (p is used up then: a rewrite changes what was parsed); later calls
// read the body afresh.
func (w *SDPWriter) RewriteParsed(p *ParsedSDP, addr netip.Addr, port int) ([]byte, error) {
	if p.sd == nil {
		return w.Rewrite(p.body, addr, port)
	}
	addr = addr.Unmap()
	if err := checkRewriteTarget(addr, port); err != nil {
		return nil, err
	}
	sd := p.sd
	p.sd = nil
	return w.rewrite(sd, addr, port)
}

func checkRewriteTarget(addr netip.Addr, port int) error {
	if !addr.IsValid() || addr.IsUnspecified() {
		return fmt.Errorf("media: SDP rewrite: address %v is not a usable unicast address: %w", addr, ErrInvalidArgument)
	}
	if port < 1 || port > maxPort {
		return fmt.Errorf("media: SDP rewrite: port %d is outside 1..65535: %w", port, ErrInvalidArgument)
	}
	return nil
}

// rewrite is Rewrite on a parsed body, which it changes.
func (w *SDPWriter) rewrite(sd *sdp.SessionDescription, addr netip.Addr, port int) ([]byte, error) {
	audio, err := audioIndex(sd)
	if err != nil {
		return nil, err
	}

	addrType := "IP4"
	if addr.Is6() {
		addrType = "IP6"
	}
	conn := func() *sdp.ConnectionInformation {
		return &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr.String()}}
	}

	md := sd.MediaDescriptions[audio]
	held := false
	if md.MediaName.Port.Value != 0 {
		if a, err := connectionAddress(sd, md); err == nil && a.IsUnspecified() {
			held = true
		}
	}

	if sd.ConnectionInformation != nil {
		sd.ConnectionInformation = conn()
	}
	sd.Attributes = withoutTransportAttributes(sd.Attributes)
	for i, m := range sd.MediaDescriptions {
		if m.ConnectionInformation != nil || (i == audio && sd.ConnectionInformation == nil) {
			m.ConnectionInformation = conn()
		}
		m.Attributes = withoutTransportAttributes(m.Attributes)
		m.MediaName.Port.Range = nil
		if i != audio || m.MediaName.Port.Value == 0 {
			m.MediaName.Port.Value = 0
			continue
		}
		m.MediaName.Port.Value = port
		for j, a := range m.Attributes {
			if a.Key != "rtcp" || port+1 > maxPort {
				continue
			}
			v := strconv.Itoa(port + 1)
			if len(strings.Fields(a.Value)) == 4 {
				v += " IN " + addrType + " " + addr.String()
			}
			m.Attributes[j].Value = v
		}
		if held {
			m.Attributes = withDirection(m.Attributes, Inactive)
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if ma := sd.MediaDescriptions[audio]; ma.MediaName.Port.Value != 0 {
		// RFC 4568 §5.1.1: the keys go with the stream they protect.
		proto := profileFor(strings.Join(ma.MediaName.Protos, "/"), len(w.crypto) > 0 && w.savp)
		ma.MediaName.Protos = strings.Split(proto, "/")
		for _, c := range w.crypto {
			ma.Attributes = append(ma.Attributes, sdp.NewAttribute("crypto", c.Value()))
		}
	}
	sd.Origin = sdp.Origin{
		Username:       w.username,
		SessionID:      w.sessionID,
		SessionVersion: w.version,
		NetworkType:    "IN",
		AddressType:    addrType,
		UnicastAddress: addr.String(),
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("media: SDP rewrite: %w", err)
	}
	if w.last != nil && !bytes.Equal(out, w.last) {
		w.version++
		sd.Origin.SessionVersion = w.version
		if out, err = sd.Marshal(); err != nil {
			return nil, fmt.Errorf("media: SDP rewrite: %w", err)
		}
	}
	w.last = out
	w.sent = bytes.Clone(out)
	w.sentEvents = -1
	if info, err := mediaInfo(sd); err == nil {
		w.sentEvents = info.TelephoneEvent
	}
	return w.sent, nil
}

// SentTelephoneEvent returns the telephone-event payload type of body
// (-1 for none), as ParseSDP(body) would, when body is what the writer's
// last Rewrite returned, unchanged; false otherwise. The payload type a
// party sends with is the one of the SDP callctl last sent it, asked twice
// a call set-up: the writer knew it, so the body is not read again.
func (w *SDPWriter) SentTelephoneEvent(body []byte) (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(body) == 0 || len(body) != len(w.sent) || &body[0] != &w.sent[0] || !bytes.Equal(body, w.last) {
		return 0, false
	}
	return w.sentEvents, true
}

// SetDirection returns body with the relayed audio stream's direction
// attribute replaced by d (added if it had none), for hold and unhold. The
// o= line is untouched: pass the result through the leg's SDPWriter so its
// version goes up.
func SetDirection(body []byte, d Direction) ([]byte, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("media: direction %q is not one of sendrecv, sendonly, recvonly, inactive: %w", d, ErrInvalidArgument)
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
	md.Attributes = withDirection(md.Attributes, d)
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("media: SDP set direction: %w", err)
	}
	return out, nil
}

// withDirection replaces the direction attributes in attrs by d, where the
// first one was, or at the end.
func withDirection(attrs []sdp.Attribute, d Direction) []sdp.Attribute {
	out := attrs[:0]
	placed := false
	for _, a := range attrs {
		if Direction(a.Key).Valid() && a.Value == "" {
			if !placed {
				out = append(out, sdp.NewPropertyAttribute(string(d)))
				placed = true
			}
			continue
		}
		out = append(out, a)
	}
	if !placed {
		out = append(out, sdp.NewPropertyAttribute(string(d)))
	}
	return out
}

// withoutTransportAttributes drops what describes transports callctl does
// not offer: ICE (RFC 8839) and SDES-SRTP keys (RFC 4568).
func withoutTransportAttributes(attrs []sdp.Attribute) []sdp.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		switch {
		case a.Key == "candidate", a.Key == "end-of-candidates", a.Key == "remote-candidates",
			strings.HasPrefix(a.Key, "ice-"), a.Key == "crypto":
			continue
		}
		out = append(out, a)
	}
	return out
}
