package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"go.uber.org/zap"
)

// Leg is one SIP dialog of a call (RFC 3261 12): the inbound INVITE callctl
// answers, or an outbound INVITE it sends. Its methods are called by the leg's
// owner; what the peer does arrives as Events through the sink.
type Leg struct {
	agent    *Agent
	id       string
	outbound bool
	callID   string
	localTag string
	log      atomic.Pointer[zap.Logger]

	// invite is the dialog-creating INVITE (for an outbound leg, the latest
	// one sent, which may carry credentials).
	invite *gosip.Request
	// inviteTx is the INVITE's transaction (server for inbound, client for
	// outbound).
	serverTx gosip.ServerTransaction
	clientTx gosip.ClientTransaction

	final     chan struct{} // inbound: closed once a final response went out
	finalOnce sync.Once

	mu           sync.Mutex
	sink         func(Event)
	localURI     gosip.Uri
	localName    string
	remoteURI    gosip.Uri
	remoteName   string
	remoteTag    string
	remoteTarget gosip.Uri
	routeSet     []gosip.Uri
	localSeq     uint32
	remoteSeq    uint32
	transport    string
	sips         bool   // the dialog is sips: (RFC 3261 26.2: TLS on every hop; tls.go)
	destination  string // where in-dialog requests go when there is no route set (flow reuse)
	provisional  bool   // outbound: a provisional response has arrived (CANCEL allowed, RFC 3261 9.1)
	cancelWanted bool   // outbound: Cancel called before any provisional
	cancelReason string // outbound: Reason header for the CANCEL
	answered     bool   // a 2xx to the dialog-creating INVITE was sent or received
	ended        bool
	ack          *gosip.Request // outbound: the ACK for the 2xx, re-sent on retransmissions
	delayedAck   *delayedAck    // outbound with DialOptions.DelayedOffer (delayedack.go)
	awaitAck     *ackWait       // a 2xx callctl sent, waiting for its ACK
	serverInvite bool           // a re-INVITE from the peer is being answered
	clientInvite bool           // callctl's own re-INVITE is in progress
	authTried    bool
	txRefs       []*legRef // cleared by releaseTransactions

	uacRSeq map[string]uint32 // outbound: last RSeq PRACKed per early dialog's To tag (prack.go)
	rel     uasReliable       // inbound: reliable provisionals sent (prack.go)
	st      sessionTimer      // RFC 4028 session timer (timers.go)
	ord     dialogOrder       // the peer's requests in CSeq order (order.go)
}

var legCounter atomic.Uint64

// ID is a short identifier of the leg, unique within the process.
func (l *Leg) ID() string { return l.id }

// CallID is the leg's Call-ID.
func (l *Leg) CallID() string { return l.callID }

// Outbound reports whether callctl created this dialog (it is the UAC).
func (l *Leg) Outbound() bool { return l.outbound }

// Invite returns the dialog-creating INVITE. Read it, don't change it.
func (l *Leg) Invite() *gosip.Request { return l.invite }

// Transport is the leg's transport ("UDP", "TCP", "TLS").
func (l *Leg) Transport() string { return l.transport }

func (l *Leg) logger() *zap.Logger { return l.log.Load() }

// SetLogger replaces the leg's logger; the owner adds its own fields (the
// session id) so every line about the call carries them. The leg's own
// fields are added lazily (zap's WithLazy): the logger's encoder is cloned
// only if the leg logs at an enabled level, not for every call.
func (l *Leg) SetLogger(log *zap.Logger) {
	l.log.Store(log.WithLazy(zap.String("call_id", l.callID), zap.String("leg", l.id)))
}

// SetSink sets the function that receives the leg's events. It must not
// block: events are produced on SIP goroutines.
func (l *Leg) SetSink(f func(Event)) {
	l.mu.Lock()
	l.sink = f
	l.mu.Unlock()
}

// Ended reports whether the dialog is over (BYE sent or received, final
// failure, or Close).
func (l *Leg) Ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

// emitLocked delivers an event; called with l.mu held so events keep the
// order in which the SIP layer accepted them.
func (l *Leg) emitLocked(ev Event) {
	if l.sink != nil {
		l.sink(ev)
	}
}

func (l *Leg) emit(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.emitLocked(ev)
}

// Close ends the leg locally without sending anything: it stops timers and
// forgets the dialog. Use it after Bye, Cancel or a final response, or to
// drop a leg at once.
func (l *Leg) Close() {
	l.mu.Lock()
	l.ended = true
	l.sink = nil
	if l.awaitAck != nil {
		l.awaitAck.stop()
		l.awaitAck = nil
	}
	l.stopTimerLocked()
	l.mu.Unlock()
	l.stopReliable()
	l.finalOnce.Do(func() { close(l.final) })
	l.agent.unregister(l)
	l.releaseTransactions()
}

// A legRef is how a transaction's callback reaches its leg. sipgo keeps a
// transaction, and the callbacks given to it, for 64*T1 (32 s) after its
// final response even once it is terminated (RFC 6026 timers L and M are
// not stopped), so a callback holding the leg itself would keep the leg,
// and through it the call's messages and logger, for 32 s after every
// call: memory that grew with the call rate. The leg clears its refs when
// the callbacks can no longer matter.
type legRef struct{ p atomic.Pointer[Leg] }

func newLegRef(l *Leg) *legRef {
	r := &legRef{}
	r.p.Store(l)
	return r
}

func (r *legRef) get() *Leg { return r.p.Load() }
func (r *legRef) clear()    { r.p.Store(nil) }

// releaseTransactions lets go of what the leg's transactions can reach:
// called once the dialog is over.
func (l *Leg) releaseTransactions() {
	l.mu.Lock()
	refs := l.txRefs
	l.txRefs = nil
	l.mu.Unlock()
	for _, r := range refs {
		r.clear()
	}
}

// txRef makes a ref for a transaction callback, cleared when the leg ends.
func (l *Leg) txRef() *legRef {
	r := newLegRef(l)
	l.mu.Lock()
	if l.ended {
		r.clear()
	} else {
		l.txRefs = append(l.txRefs, r)
	}
	l.mu.Unlock()
	return r
}

func newLegID(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, legCounter.Add(1))
}

// newRequestLocked builds an in-dialog request per RFC 3261 12.2.1.1.
func (l *Leg) newRequestLocked(method gosip.RequestMethod, body []byte) *gosip.Request {
	target := l.remoteTarget
	req := gosip.NewRequest(method, target)
	req.AppendHeader(l.agent.via(l.transport))
	for _, r := range l.routeSet {
		req.AppendHeader(&gosip.RouteHeader{Address: r})
	}
	from := &gosip.FromHeader{DisplayName: l.localName, Address: l.localURI, Params: gosip.HeaderParams{{K: "tag", V: l.localTag}}}
	to := &gosip.ToHeader{DisplayName: l.remoteName, Address: l.remoteURI}
	if l.remoteTag != "" {
		to.Params = gosip.HeaderParams{{K: "tag", V: l.remoteTag}}
	}
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := gosip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	if method != gosip.ACK && method != gosip.CANCEL {
		l.localSeq++
	}
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: l.localSeq, MethodName: method})
	mf := gosip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	// RFC 6665 8.2.1: a NOTIFY carries Contact too.
	if method == gosip.INVITE || method == gosip.REFER || method == gosip.UPDATE || method == gosip.NOTIFY {
		req.AppendHeader(l.contactHeader())
	}
	req.AppendHeader(gosip.NewHeader("User-Agent", l.agent.cfg.UserAgent))
	if len(body) > 0 {
		req.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(l.transport)
	if len(l.routeSet) == 0 && l.destination != "" {
		req.SetDestination(l.destination)
	}
	return req
}

// Bye ends an answered dialog with a BYE (RFC 3261 15), in the background
// (an outbound leg not yet answered is cancelled instead);
// reason, when set, goes in a Reason header (RFC 3326). The leg is ended at
// once; the owner gets no more events from it.
func (l *Leg) Bye(reason string) {
	l.flushDelayedAck() // RFC 3261 15: never a BYE before the 2xx's ACK
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	if !l.answered {
		l.mu.Unlock()
		if l.outbound {
			l.CancelWithReason(reason) // not answered yet: CANCEL, or BYE if a 2xx races it
		} else {
			l.Close()
		}
		return
	}
	l.ended = true
	l.sink = nil
	l.stopTimerLocked()
	wait := l.awaitAck
	l.mu.Unlock()
	l.agent.unregister(l)
	l.agent.goOwned(func() {
		// RFC 3261 15: the callee MUST NOT send BYE before the ACK for its
		// 2xx arrived or the server transaction timed out.
		if wait != nil {
			wait.waitDone(64 * t1())
		}
		l.mu.Lock()
		req := l.newRequestLocked(gosip.BYE, nil)
		l.mu.Unlock()
		if reason != "" {
			req.AppendHeader(gosip.NewHeader("Reason", reason))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
		defer cancel()
		res, err := l.do(ctx, req)
		if err != nil {
			l.logger().Debug("BYE got no answer", zap.Error(err))
		} else if res.StatusCode >= 300 {
			l.logger().Debug("BYE refused", zap.Int("status", res.StatusCode))
		}
		l.releaseTransactions()
	})
}

// do sends a request and waits for its final response, answering one digest
// challenge when credentials are configured.
func (l *Leg) do(ctx context.Context, req *gosip.Request) (*gosip.Response, error) {
	authed := false
	for {
		tx, err := l.agent.transact(ctx, req)
		if err != nil {
			return nil, err
		}
		res, err := l.agent.finalResponse(ctx, tx)
		tx.Terminate()
		if err != nil {
			return nil, err
		}
		l.agent.countReceived(res.StatusCode)
		if (res.StatusCode == 401 || res.StatusCode == 407) && !authed && l.agent.cfg.Credentials.Username != "" {
			authed = true
			l.mu.Lock()
			l.localSeq++
			seq := l.localSeq
			l.mu.Unlock()
			if err := l.agent.authorize(req, res, seq); err != nil {
				return res, err
			}
			continue
		}
		return res, nil
	}
}

func (a *Agent) finalResponse(ctx context.Context, tx gosip.ClientTransaction) (*gosip.Response, error) {
	for {
		select {
		case res := <-tx.Responses():
			if !a.acceptResponse(res) || res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("transaction ended without a final response")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// authorize rewrites req to answer res's digest challenge (RFC 3261 22.2):
// credentials added, a new branch, CSeq set to seq.
func (a *Agent) authorize(req *gosip.Request, res *gosip.Response, seq uint32) error {
	chalHdr, credName := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		chalHdr, credName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(chalHdr)
	if h == nil {
		return fmt.Errorf("%d without %s", res.StatusCode, chalHdr)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return fmt.Errorf("parse %s: %w", chalHdr, err)
	}
	chal.Algorithm = strings.ToUpper(chal.Algorithm)
	cred, err := digest.Digest(chal, digest.Options{
		Method:   string(req.Method),
		URI:      req.Recipient.Addr(),
		Username: a.cfg.Credentials.Username,
		Password: a.cfg.Credentials.Password,
	})
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	req.RemoveHeader(credName)
	req.AppendHeader(gosip.NewHeader(credName, cred.String()))
	req.RemoveHeader("Via")
	req.PrependHeader(a.via(req.Transport()))
	req.CSeq().SeqNo = seq
	return nil
}

// Reinvite sends a re-INVITE carrying offer (RFC 3261 14.1) in the
// background; the outcome arrives as a ReinviteResult. A 2xx is ACKed here.
// It returns an error at once if the leg is not answered, has ended, or a
// re-INVITE is already in progress on it.
func (l *Leg) Reinvite(offer []byte) error {
	l.mu.Lock()
	switch {
	case l.ended:
		l.mu.Unlock()
		return errors.New("leg has ended")
	case !l.answered:
		l.mu.Unlock()
		return errors.New("leg is not answered")
	case l.clientInvite || l.serverInvite || l.awaitAck != nil:
		l.mu.Unlock()
		return errGlare
	}
	l.clientInvite = true
	req := l.newRequestLocked(gosip.INVITE, offer)
	for _, h := range l.requestTimerHeadersLocked() {
		req.AppendHeader(h)
	}
	l.mu.Unlock()
	ok := l.agent.goOwned(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
		defer cancel()
		res, err := l.do(ctx, req)
		ev := &ReinviteResult{Leg: l, Response: res, Err: err}
		switch {
		case err != nil:
			ev.Status = 408
		default:
			ev.Status = res.StatusCode
			if res.IsSuccess() {
				l.sendAck(req, res)
			}
		}
		l.mu.Lock()
		l.clientInvite = false
		if err == nil && res.IsSuccess() && !l.ended {
			l.rememberSDPLocked(offer)
			l.uacTimerLocked(res, false) // a 2xx re-INVITE refreshes the session (RFC 4028 7.4)
		}
		l.emitLocked(ev)
		l.mu.Unlock()
	})
	if !ok {
		l.mu.Lock()
		l.clientInvite = false
		l.mu.Unlock()
		return ErrClosed
	}
	return nil
}

var errGlare = errors.New("an INVITE transaction is already in progress on this leg")

// IsGlare reports whether err from Reinvite means another INVITE transaction
// is in progress (the caller should retry later, RFC 3261 14.1).
func IsGlare(err error) bool { return errors.Is(err, errGlare) }

// sendAck ACKs a 2xx to an INVITE callctl sent (RFC 3261 13.2.2.4): same CSeq
// number, new branch, sent to the remote target through the route set.
func (l *Leg) sendAck(invite *gosip.Request, res *gosip.Response) {
	l.mu.Lock()
	seq := l.localSeq
	l.localSeq = invite.CSeq().SeqNo // ACK carries the INVITE's number
	ack := l.newRequestLocked(gosip.ACK, nil)
	l.localSeq = seq
	l.mu.Unlock()
	if a := invite.GetHeader("Authorization"); a != nil {
		ack.AppendHeader(gosip.HeaderClone(a))
	}
	if a := invite.GetHeader("Proxy-Authorization"); a != nil {
		ack.AppendHeader(gosip.HeaderClone(a))
	}
	if err := l.agent.write(ack); err != nil {
		l.logger().Warn("sending ACK failed", zap.Error(err))
	}
}

// onAck handles an ACK to a 2xx callctl sent on this leg.
func (l *Leg) onAck(req *gosip.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.awaitAck
	if w == nil || req.CSeq().SeqNo != w.cseq {
		return // a retransmitted or stray ACK
	}
	w.stop()
	l.awaitAck = nil
	l.emitLocked(&Acked{Leg: l, CSeq: w.cseq, Body: req.Body()})
}

// onBye answers a BYE from the peer and ends the dialog (RFC 3261 15.1.2).
func (l *Leg) onBye(req *gosip.Request, tx gosip.ServerTransaction) {
	l.mu.Lock()
	if l.remoteSeq != 0 && req.CSeq().SeqNo < l.remoteSeq {
		l.mu.Unlock()
		l.agent.respond(tx, req, 500, "Server Internal Error", nil)
		return
	}
	l.remoteSeq = req.CSeq().SeqNo
	l.ord.advance()
	l.stopTimerLocked()
	// Forget the dialog before answering, so that once the peer has its 200
	// nothing can still be routed to this leg. a.mu is a leaf lock.
	l.agent.unregister(l)
	l.agent.respond(tx, req, 200, "OK", nil)
	// A retransmitted BYE is answered from the record (recent.go), not by
	// a transaction kept 32 s (RFC 3261 17.2.2 Timer J).
	l.agent.endAnswered(tx, req, 200)
	l.ended = true
	if l.awaitAck != nil {
		l.awaitAck.stop()
		l.awaitAck = nil
	}
	l.emitLocked(&Bye{Leg: l, Request: req})
	l.sink = nil
	l.mu.Unlock()
	l.releaseTransactions()
}

// onRequest hands an in-dialog request to the owner and waits for its answer.
func (l *Leg) onRequest(req *gosip.Request, tx gosip.ServerTransaction) {
	isInvite := req.Method == gosip.INVITE
	l.mu.Lock()
	// Requests of the dialog reach the owner in CSeq order (order.go).
	l.awaitTurnLocked(req.CSeq().SeqNo)
	// RFC 3261 12.2.2: a CSeq lower than the last one is out of order.
	if l.remoteSeq != 0 && req.CSeq().SeqNo <= l.remoteSeq {
		l.mu.Unlock()
		l.agent.respond(tx, req, 500, "Server Internal Error", nil, gosip.NewHeader("Retry-After", "1"))
		return
	}
	if isInvite {
		// RFC 3261 14.2: a second INVITE while one is pending.
		if l.serverInvite || l.awaitAck != nil {
			l.mu.Unlock()
			l.agent.respond(tx, req, 500, "Server Internal Error", nil, gosip.NewHeader("Retry-After", fmt.Sprint(rand.IntN(10))))
			return
		}
		if l.clientInvite {
			l.mu.Unlock()
			l.agent.respond(tx, req, 491, "Request Pending", nil)
			return
		}
		l.serverInvite = true
		// A target refresh (RFC 3261 12.2.2).
		if c := req.Contact(); c != nil {
			l.remoteTarget = c.Address
		}
	}
	l.refreshTargetLocked(req) // an UPDATE's Contact (update.go)
	l.remoteSeq = req.CSeq().SeqNo
	l.ord.advance()
	done := make(chan struct{})
	var once sync.Once
	respond := func(status int, reason string, body []byte, hdrs ...gosip.Header) {
		once.Do(func() {
			defer close(done)
			if isInvite && status >= 200 && status < 300 {
				l.answerInvite(tx, req, status, reason, body, hdrs...)
				l.mu.Lock()
				l.serverInvite = false
				l.mu.Unlock()
				return
			}
			res := gosip.NewResponseFromRequest(req, status, reason, body)
			if len(body) > 0 {
				res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
			}
			for _, h := range hdrs {
				res.AppendHeader(h)
			}
			if req.Method == gosip.UPDATE && status >= 200 && status < 300 {
				// A 2xx to UPDATE refreshes the session (RFC 4028 9).
				l.mu.Lock()
				l.rememberSDPLocked(body)
				for _, h := range l.uasTimerLocked(req) {
					res.AppendHeader(h)
				}
				l.mu.Unlock()
			}
			l.agent.countSent(status)
			if err := tx.Respond(res); err != nil {
				l.agent.responseFailed(l.logger(), status, err)
			}
			if isInvite && status >= 200 {
				l.mu.Lock()
				l.serverInvite = false
				l.mu.Unlock()
			}
		})
	}
	ev := &Request{Leg: l, Request: req, respond: respond}
	hasSink := l.sink != nil
	l.emitLocked(ev)
	l.mu.Unlock()
	if !hasSink {
		respond(481, "Call/Transaction Does Not Exist", nil)
		return
	}
	select {
	case <-done:
	case <-tx.Done():
		respond(408, "Request Timeout", nil)
	case <-time.After(64 * t1()):
		respond(500, "Server Internal Error", nil)
	}
}

// Send sends an in-dialog non-INVITE request (REFER, INFO, …) in the
// background; its outcome arrives as a Result carrying tag. It returns the
// request's CSeq number (a REFER's subscription id, RFC 3515 2.4.6).
func (l *Leg) Send(method gosip.RequestMethod, contentType string, body []byte, tag any, hdrs ...gosip.Header) (uint32, error) {
	if method == gosip.INVITE || method == gosip.ACK || method == gosip.CANCEL {
		return 0, fmt.Errorf("Send cannot send %s", method)
	}
	l.mu.Lock()
	if l.ended || !l.answered {
		l.mu.Unlock()
		return 0, errors.New("leg is not in a confirmed dialog")
	}
	req := l.newRequestLocked(method, nil)
	l.mu.Unlock()
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if len(body) > 0 {
		req.RemoveHeader("Content-Type")
		req.AppendHeader(gosip.NewHeader("Content-Type", contentType))
		req.SetBody(body)
	}
	seq := req.CSeq().SeqNo
	ok := l.agent.goOwned(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
		defer cancel()
		res, err := l.do(ctx, req)
		ev := &Result{Leg: l, Method: method, Tag: tag, Response: res, Err: err, Status: 408}
		if err == nil {
			ev.Status = res.StatusCode
		}
		l.emit(ev)
	})
	if !ok {
		return 0, ErrClosed
	}
	return seq, nil
}

// Request sends an in-dialog non-INVITE request and waits for its final
// response (for owners' helper goroutines, such as a DTMF sender).
func (l *Leg) Request(ctx context.Context, method gosip.RequestMethod, contentType string, body []byte, hdrs ...gosip.Header) (*gosip.Response, error) {
	l.mu.Lock()
	if l.ended || !l.answered {
		l.mu.Unlock()
		return nil, errors.New("leg is not in a confirmed dialog")
	}
	req := l.newRequestLocked(method, nil)
	l.mu.Unlock()
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if len(body) > 0 {
		req.AppendHeader(gosip.NewHeader("Content-Type", contentType))
		req.SetBody(body)
	}
	return l.do(ctx, req)
}
