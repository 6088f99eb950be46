package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// dialog is one SIP dialog between a phone and callctl (RFC 3261 §12): the
// phone is its UAC when it placed the call, its UAS when it took one. The
// goroutine that runs the call owns it; the SIP handlers answer in-dialog
// requests themselves and tell the owner what it must act on (the far end
// hung up, a REFER to carry out) through channels.
type dialog struct {
	s     *Sim
	phone phone
	log   *zap.Logger
	media *stream

	callID       string
	localTag     string
	localURI     sip.Uri
	remoteURI    sip.Uri
	remoteName   string
	remoteTarget sip.Uri // the far end's Contact: where in-dialog requests go
	inviteSeq    uint32  // CSeq of the INVITE that made the dialog, for its ACK

	mu         sync.Mutex
	remoteTag  string
	localSeq   uint32
	sdp        localMedia
	withEvents bool // telephone-event was negotiated
	ended      bool

	ackOnce sync.Once
	acked   chan struct{} // closed by the ACK of the phone's 2xx (UAS)
	bye     chan struct{} // closed when the far end ends the dialog
	refer   chan referral // a REFER the phone accepted, for its owner to carry out
}

// referral is an accepted REFER: call target, report with NOTIFYs whose
// Event names the REFER's CSeq (RFC 3515 §2.4.6).
type referral struct {
	target string // the Refer-To user part, a number
	seq    uint32
}

func newDialog(s *Sim, p phone, callID, localTag string, media *stream) *dialog {
	return &dialog{
		s: s, phone: p, media: media, callID: callID, localTag: localTag,
		log:      s.log.With(zap.String("phone", p.number), zap.String("call_id", callID)),
		localSeq: rand.Uint32N(1 << 15),
		sdp:      localMedia{session: rand.Uint64N(1 << 62), port: media.port()},
		acked:    make(chan struct{}),
		bye:      make(chan struct{}),
		refer:    make(chan referral, 1),
	}
}

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

// key is how in-dialog requests find the dialog: their Call-ID and To tag.
func (d *dialog) key() string { return dialogKey(d.callID, d.localTag) }

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1); the client
// adds the Via. ACK and CANCEL reuse the INVITE's CSeq number, every other
// method takes the next one.
func (d *dialog) newRequest(method sip.RequestMethod, contentType string, body []byte) *sip.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	req := sip.NewRequest(method, d.remoteTarget)
	req.AppendHeader(&sip.FromHeader{DisplayName: d.phone.name, Address: d.localURI, Params: sip.HeaderParams{{K: "tag", V: d.localTag}}})
	to := &sip.ToHeader{DisplayName: d.remoteName, Address: d.remoteURI}
	if d.remoteTag != "" {
		to.Params = sip.HeaderParams{{K: "tag", V: d.remoteTag}}
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	seq := d.localSeq
	if method != sip.ACK && method != sip.CANCEL {
		d.localSeq++
		seq = d.localSeq
	}
	if method == sip.ACK {
		seq = d.inviteSeq
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	if method != sip.ACK && method != sip.BYE && method != sip.CANCEL {
		req.AppendHeader(d.s.contact(d.phone.number))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	req.SetBody(body)
	return req
}

// end marks the dialog ended: the phone stops sending and the dialog stops
// taking requests (they get 481). It reports whether this call ended it.
func (d *dialog) end() bool {
	d.mu.Lock()
	was := d.ended
	d.ended = true
	d.mu.Unlock()
	if was {
		return false
	}
	d.media.update(netip.AddrPort{}, inactive)
	d.s.unregister(d)
	return true
}

// hangUp ends the dialog with a BYE (RFC 3261 §15.1.1) and waits a little
// for its answer; it does nothing if the dialog already ended.
func (d *dialog) hangUp() {
	if !d.end() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangupWait)
	defer cancel()
	res, err := d.s.request(ctx, d.newRequest(sip.BYE, "", nil))
	switch {
	case err != nil:
		d.log.Debug("BYE got no answer", zap.Error(err))
	case res.StatusCode >= 300:
		d.log.Debug("BYE refused", zap.Int("status", res.StatusCode))
	}
}

// farEndHungUp is the far end's BYE, answered 200 by the handler.
func (d *dialog) farEndHungUp() {
	if d.end() {
		close(d.bye)
	}
}

// notify reports a referral's progress (RFC 3515 §2.4.4): the status line
// of the call to the target as message/sipfrag (RFC 3420). A final NOTIFY
// ends the implicit subscription.
func (d *dialog) notify(r referral, code int, reason string, final bool) {
	body := fmt.Appendf(nil, "SIP/2.0 %d %s\r\n", code, reason)
	req := d.newRequest(sip.NOTIFY, "message/sipfrag;version=2.0", body)
	req.AppendHeader(sip.NewHeader("Event", fmt.Sprintf("refer;id=%d", r.seq)))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	ctx, cancel := context.WithTimeout(context.Background(), hangupWait)
	defer cancel()
	if _, err := d.s.request(ctx, req); err != nil {
		d.log.Debug("NOTIFY got no answer", zap.Error(err))
	}
}

// answerOffer answers an offer from callctl: it points the stream at the
// offer's address, mirrors its direction (RFC 3264 §6.1) and returns the
// phone's SDP. A phone put on hold with sendonly or inactive stops sending.
func (d *dialog) answerOffer(offer remoteMedia) []byte {
	dir := offer.dir.answer()
	d.media.update(offer.addr, dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.withEvents = offer.telephone
	return d.sdp.body(dir, offer.telephone)
}

// offer returns a new offer of the phone's SDP, sendrecv.
func (d *dialog) offer() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sdp.body(sendRecv, d.withEvents)
}

// contact is the Contact of a phone: the PBX's address with the number.
func (s *Sim) contact(number string) *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: s.host, Port: s.port}}
}

// register and unregister keep the dialogs in-dialog requests can reach.
func (s *Sim) register(d *dialog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dialogs[d.key()] = d
}

func (s *Sim) unregister(d *dialog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dialogs[d.key()] == d {
		delete(s.dialogs, d.key())
	}
}

// lookup finds the dialog of an in-dialog request: its To tag is the
// phone's local tag.
func (s *Sim) lookup(req *sip.Request) *dialog {
	cid, to := req.CallID(), req.To()
	if cid == nil || to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dialogs[dialogKey(cid.Value(), tag)]
}

// request sends a request and waits for its final response.
func (s *Sim) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := s.client.TransactionRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("demo: %s transaction ended without a final response", req.Method)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
