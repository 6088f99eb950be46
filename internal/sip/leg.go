package sip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	gosip "github.com/emiago/sipgo/sip"
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
