package sip

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// Dialog is a leg's dialog state (RFC 3261 12): what another callctl
// process needs to go on with the dialog, kept in the live-call store.
type Dialog struct {
	Outbound     bool     `json:"outbound"`
	CallID       string   `json:"call_id"`
	LocalTag     string   `json:"local_tag"`
	RemoteTag    string   `json:"remote_tag"`
	LocalURI     string   `json:"local_uri"`
	LocalName    string   `json:"local_name,omitempty"`
	RemoteURI    string   `json:"remote_uri"`
	RemoteName   string   `json:"remote_name,omitempty"`
	RemoteTarget string   `json:"remote_target"`
	RouteSet     []string `json:"route_set,omitempty"`
	LocalSeq     uint32   `json:"local_seq"`
	RemoteSeq    uint32   `json:"remote_seq"`
	Transport    string   `json:"transport"`
	SIPS         bool     `json:"sips,omitempty"`
	// Allow is the Allow header of the peer's dialog-creating INVITE
	// (an inbound leg): the methods it takes.
	Allow string `json:"allow,omitempty"`
	// The RFC 4028 session timer negotiated on the leg (0: none).
	TimerInterval   uint32 `json:"timer_interval,omitempty"`
	TimerRefresher  bool   `json:"timer_refresher,omitempty"`
	TimerPeerUpdate bool   `json:"timer_peer_update,omitempty"`
}

// seqMargin is added to a restored dialog's local CSeq: requests sent
// after the record was last written (session refreshes, INFO) used numbers
// the record does not know, and RFC 3261 12.2.1.1 wants each new request's
// CSeq higher than the last; any larger number will do.
const seqMargin = 1000

// Dialog returns the leg's dialog state. Only an answered leg has a whole
// one.
func (l *Leg) Dialog() Dialog {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := Dialog{
		Outbound: l.outbound, CallID: l.callID, LocalTag: l.localTag, RemoteTag: l.remoteTag,
		LocalURI: l.localURI.String(), LocalName: l.localName,
		RemoteURI: l.remoteURI.String(), RemoteName: l.remoteName, RemoteTarget: l.remoteTarget.String(),
		LocalSeq: l.localSeq, RemoteSeq: l.remoteSeq, Transport: l.transport, SIPS: l.sips,
		TimerInterval: l.st.interval, TimerRefresher: l.st.refresher, TimerPeerUpdate: l.st.peerUpdate,
	}
	for _, r := range l.routeSet {
		d.RouteSet = append(d.RouteSet, r.String())
	}
	if !l.outbound && l.invite != nil {
		d.Allow = HeaderValues(l.invite.GetHeaders("Allow"))
	}
	return d
}

// HeaderValues joins the values of a repeated header (RFC 3261 7.3.1).
func HeaderValues(hs []gosip.Header) string {
	vals := make([]string, len(hs))
	for i, h := range hs {
		vals[i] = h.Value()
	}
	return strings.Join(vals, ",")
}

// ErrBadDialog is a dialog state that cannot be restored.
var ErrBadDialog = errors.New("sip: dialog state not usable")

// Restore re-creates an answered leg from its dialog state (a record of
// a process that is gone) and registers it, so the peer's in-dialog
// requests reach it. Nothing is sent: the owner re-INVITEs the peer. body
// stands for the dialog-creating INVITE's offer (the party's current SDP).
func (a *Agent) Restore(d Dialog, body []byte, sink func(Event)) (*Leg, error) {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	var errs []error
	uri := func(field, s string) gosip.Uri {
		var u gosip.Uri
		// sipgo's URI parser takes spaces and brackets in a host; a request
		// written with them is no SIP message (RFC 3261 25.1: no white
		// space or angle brackets in a Request-URI).
		if err := gosip.ParseUri(s, &u); err != nil || u.Host == "" || strings.ContainsFunc(s, notURIChar) {
			errs = append(errs, fmt.Errorf("%s %q is not a SIP URI", field, s))
		}
		return u
	}
	l := &Leg{
		agent: a, outbound: d.Outbound, callID: d.CallID, localTag: d.LocalTag, remoteTag: d.RemoteTag,
		localName: d.LocalName, remoteName: d.RemoteName,
		localURI: uri("local_uri", d.LocalURI), remoteURI: uri("remote_uri", d.RemoteURI),
		remoteTarget: uri("remote_target", d.RemoteTarget),
		localSeq:     d.LocalSeq + seqMargin, remoteSeq: d.RemoteSeq,
		transport: strings.ToUpper(d.Transport), sips: d.SIPS, answered: true,
		sink: sink, final: make(chan struct{}),
	}
	for i, r := range d.RouteSet {
		l.routeSet = append(l.routeSet, uri(fmt.Sprintf("route_set[%d]", i), r))
	}
	switch {
	case d.CallID == "" || strings.ContainsAny(d.CallID, " \t\r\n"):
		errs = append(errs, fmt.Errorf("call_id %q is not a Call-ID", d.CallID))
	case d.LocalTag == "" || d.RemoteTag == "":
		errs = append(errs, errors.New("local_tag and remote_tag must both be set (an answered dialog)"))
	case !validTag(d.LocalTag) || !validTag(d.RemoteTag):
		errs = append(errs, fmt.Errorf("local_tag %q or remote_tag %q is not a token (RFC 3261 25.1)", d.LocalTag, d.RemoteTag))
	case !slices.Contains([]string{"UDP", "TCP", "TLS"}, l.transport):
		errs = append(errs, fmt.Errorf("transport %q is not UDP, TCP or TLS", d.Transport))
	case strings.ContainsAny(d.LocalName+d.RemoteName+d.Allow+d.LocalTag+d.RemoteTag, "\r\n\""):
		errs = append(errs, errors.New("a name, tag or allow holds a line break or quote"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrBadDialog, errors.Join(errs...))
	}
	l.st.interval, l.st.refresher, l.st.peerUpdate = d.TimerInterval, d.TimerRefresher, d.TimerPeerUpdate
	prefix := "a"
	if d.Outbound {
		prefix = "b"
	}
	l.id = newLegID(prefix)
	l.invite = l.standInInvite(d.Allow, body)
	l.finalOnce.Do(func() { close(l.final) }) // answered long ago
	l.SetLogger(a.log)
	a.register(l)
	return l, nil
}

// notURIChar reports a character no URI of a request line may hold: white
// space, controls, quotes and angle brackets.
func notURIChar(r rune) bool {
	return r <= ' ' || r == 0x7f || r == '"' || r == '<' || r == '>' || r > 0x7e
}

// validTag reports whether s is an RFC 3261 token (25.1), as tags are, of
// any length.
func validTag(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-.!%*_+`'~", r))
	})
}

// standInInvite is what Invite returns for a restored leg: the
// dialog-creating INVITE as far as the dialog state tells it (the original
// went with the process that received it).
func (l *Leg) standInInvite(allow string, body []byte) *gosip.Request {
	ruri := l.localURI
	from := &gosip.FromHeader{DisplayName: l.remoteName, Address: l.remoteURI, Params: gosip.HeaderParams{{K: "tag", V: l.remoteTag}}}
	to := &gosip.ToHeader{DisplayName: l.localName, Address: l.localURI, Params: gosip.HeaderParams{{K: "tag", V: l.localTag}}}
	if l.outbound {
		ruri = l.remoteURI
		from = &gosip.FromHeader{DisplayName: l.localName, Address: l.localURI, Params: gosip.HeaderParams{{K: "tag", V: l.localTag}}}
		to = &gosip.ToHeader{DisplayName: l.remoteName, Address: l.remoteURI, Params: gosip.HeaderParams{{K: "tag", V: l.remoteTag}}}
	}
	req := gosip.NewRequest(gosip.INVITE, ruri)
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := gosip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: l.remoteSeq, MethodName: gosip.INVITE})
	if allow != "" {
		req.AppendHeader(gosip.NewHeader("Allow", allow))
	}
	if len(body) > 0 {
		req.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(l.transport)
	return req
}
