package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// DialOptions describe an outbound INVITE.
type DialOptions struct {
	// Target is the Request-URI (and To).
	Target gosip.Uri
	// Transport: "udp", "tcp" or "tls". A sips: Target needs "tls".
	Transport string
	// FromUser and FromName make the From header (sip:FromUser@callctl).
	FromUser string
	FromName string
	// Body is the SDP offer.
	Body []byte
	// DelayedOffer sends the INVITE without SDP (Body is ignored): the 2xx
	// carries the offer, Answered is emitted before any ACK, and the owner
	// sends the ACK with the answer by Leg.Ack (see delayedack.go).
	DelayedOffer bool
	// MaxForwards is the inbound INVITE's value minus one (RFC 3261 16.6).
	MaxForwards uint32
	// Headers are added as they are.
	Headers []gosip.Header
}

// Dial sends an INVITE and returns its leg; sink receives Progress, then
// Answered or Failed, and later in-dialog events.
func (a *Agent) Dial(opts DialOptions, sink func(Event)) (*Leg, error) {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if opts.Transport == "" {
		opts.Transport = "udp"
	}
	if opts.MaxForwards == 0 {
		opts.MaxForwards = 70
	}
	sips := strings.EqualFold(opts.Target.Scheme, "sips")
	if sips && !strings.EqualFold(opts.Transport, "tls") {
		return nil, fmt.Errorf("%w: %s over %s", ErrSIPSNeedsTLS, opts.Target.String(), opts.Transport)
	}
	l := &Leg{
		agent:     a,
		id:        newLegID("b"),
		outbound:  true,
		callID:    gosip.GenerateTagN(24) + "@callctl",
		localTag:  gosip.GenerateTagN(16),
		final:     make(chan struct{}),
		sink:      sink,
		transport: strings.ToUpper(opts.Transport),
		sips:      sips,
	}
	l.localURI = gosip.Uri{Scheme: "sip", User: opts.FromUser, Host: a.host}
	l.localName = opts.FromName
	l.remoteURI = opts.Target
	l.remoteTarget = opts.Target
	l.localSeq = rand.Uint32N(1<<15) + 1
	l.SetLogger(a.log)
	if opts.DelayedOffer {
		opts.Body = nil
		l.delayedAck = &delayedAck{}
	}

	l.mu.Lock()
	l.localSeq-- // newRequestLocked increments
	req := l.newRequestLocked(gosip.INVITE, opts.Body)
	l.mu.Unlock()
	mf := gosip.MaxForwardsHeader(opts.MaxForwards)
	req.ReplaceHeader(&mf)
	req.AppendHeader(gosip.NewHeader("Allow", allowHeader))
	req.AppendHeader(gosip.NewHeader("Supported", supportedHeader))
	for _, h := range a.inviteTimerHeaders(a.ourInterval()) {
		req.AppendHeader(h)
	}
	for _, h := range opts.Headers {
		req.AppendHeader(h)
	}
	l.invite = req
	a.register(l)
	if !a.goOwned(func() { l.runInvite(req) }) {
		a.unregister(l)
		return nil, ErrClosed
	}
	return l, nil
}

// runInvite drives the outbound INVITE client transaction to its end.
func (l *Leg) runInvite(req *gosip.Request) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		tx, err := l.agent.transact(ctx, req)
		if err != nil {
			l.fail(nil, 503, fmt.Errorf("send INVITE: %w", err))
			return
		}
		l.mu.Lock()
		l.clientTx = tx
		l.invite = req
		l.mu.Unlock()
		// RFC 3261 13.2.2.4: every retransmitted 2xx is ACKed again.
		ref := l.txRef()
		tx.OnRetransmission(func(res *gosip.Response) {
			if l := ref.get(); l != nil && res.IsSuccess() && l.agent.acceptResponse(res) {
				l.onRetransmitted2xx(req, res)
			}
		})
		retry, done := l.readInvite(tx, req)
		if done {
			return
		}
		req = retry
	}
}

// readInvite reads responses of one INVITE transaction. It returns a new
// request to send when a challenge was answered, or done.
func (l *Leg) readInvite(tx gosip.ClientTransaction, req *gosip.Request) (*gosip.Request, bool) {
	for {
		select {
		case res := <-tx.Responses():
			if !l.agent.acceptResponse(res) {
				continue
			}
			l.agent.countReceived(res.StatusCode)
			switch {
			case res.StatusCode == 100:
			case res.IsProvisional():
				if !l.acceptProvisional(req, res) {
					continue // a reliable provisional already PRACKed (RFC 3262 4)
				}
				l.mu.Lock()
				l.provisional = true
				wantCancel := l.cancelWanted && !l.ended
				if tag, _ := res.To().Params.Get("tag"); tag != "" && l.remoteTag == "" {
					l.remoteTag = tag
				}
				l.learnEarlyDialogLocked(res) // remote target and routes for UPDATE (update.go)
				l.emitLocked(&Progress{Leg: l, Response: res})
				l.mu.Unlock()
				if wantCancel {
					l.sendCancel(req)
				}
			case res.IsSuccess():
				l.onAnswer(req, res)
				return nil, true
			case res.StatusCode == 422:
				// RFC 4028 7.4: retry with the interval the peer asks for.
				if next := l.retryAfter422(req, res); next != nil {
					return next, false
				}
				l.fail(res, res.StatusCode, nil)
				return nil, true
			case (res.StatusCode == 401 || res.StatusCode == 407) && l.agent.cfg.Credentials.Username != "":
				l.mu.Lock()
				tried := l.authTried
				l.authTried = true
				l.localSeq++
				seq := l.localSeq
				l.mu.Unlock()
				if tried {
					l.fail(res, res.StatusCode, nil)
					return nil, true
				}
				next := req.Clone()
				if err := l.agent.authorize(next, res, seq); err != nil {
					l.fail(res, res.StatusCode, err)
					return nil, true
				}
				return next, false
			default:
				l.fail(res, res.StatusCode, nil)
				return nil, true
			}
		case <-tx.Done():
			err := tx.Err()
			status := 408
			if err != nil && errors.Is(err, gosip.ErrTransactionTransport) {
				status = 503
			}
			l.fail(nil, status, err)
			return nil, true
		}
	}
}

func (l *Leg) fail(res *gosip.Response, status int, err error) {
	l.mu.Lock()
	if l.ended && l.sink == nil {
		l.mu.Unlock()
		l.Close()
		return
	}
	l.ended = true
	l.emitLocked(&Failed{Leg: l, Response: res, Status: status, Err: err})
	l.sink = nil
	l.mu.Unlock()
	l.Close()
}

// onAnswer handles the 2xx that creates the dialog (RFC 3261 12.1.2, 13.2.2.4).
func (l *Leg) onAnswer(req *gosip.Request, res *gosip.Response) {
	l.mu.Lock()
	l.remoteTag, _ = res.To().Params.Get("tag")
	if to := res.To(); to != nil {
		l.remoteName = to.DisplayName
	}
	if c := res.Contact(); c != nil {
		l.remoteTarget = c.Address
	}
	// UAC route set: Record-Route in reverse order.
	rrs := res.GetHeaders("Record-Route")
	l.routeSet = nil
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*gosip.RecordRouteHeader); ok {
			l.routeSet = append(l.routeSet, rr.Address)
		}
	}
	l.answered = true
	cancelled := l.cancelWanted || l.ended
	if !cancelled {
		l.rememberSDPLocked(req.Body())
		l.uacTimerLocked(res, true)
	}
	delayed := l.delayedAck != nil
	l.mu.Unlock()
	if delayed && !cancelled {
		l.holdAck(req, res) // the owner ACKs with the answer (Leg.Ack)
		l.emit(&Answered{Leg: l, Response: res})
		return
	}
	l.sendAck(req, res)
	if cancelled {
		// RFC 3261 15: a 2xx that raced our CANCEL: ACK it, then BYE.
		l.mu.Lock()
		l.ended = false
		l.sink = nil
		l.mu.Unlock()
		l.Bye("")
		return
	}
	l.emit(&Answered{Leg: l, Response: res})
}

func (l *Leg) onRetransmitted2xx(req *gosip.Request, res *gosip.Response) {
	tag, _ := res.To().Params.Get("tag")
	l.mu.Lock()
	same := tag == l.remoteTag
	l.mu.Unlock()
	if same {
		if !l.ackDelayed(req) {
			l.sendAck(req, res)
		}
		return
	}
	// A 2xx from another fork (RFC 3261 13.2.2.4): ACK and BYE it.
	l.logger().Info("2xx from a second fork: ACK and BYE it")
	fork := &Leg{agent: l.agent, id: newLegID("f"), outbound: true, callID: l.callID, localTag: l.localTag,
		final: make(chan struct{}), transport: l.transport, sips: l.sips}
	fork.log.Store(l.logger())
	fork.localURI, fork.localName, fork.remoteURI = l.localURI, l.localName, l.remoteURI
	fork.localSeq = req.CSeq().SeqNo
	fork.answered = true
	fork.remoteTag = tag
	fork.remoteTarget = l.remoteTarget
	if c := res.Contact(); c != nil {
		fork.remoteTarget = c.Address
	}
	fork.sendAck(req, res)
	fork.Bye("")
}

// Cancel stops an outbound INVITE that has not been answered (RFC 3261 9.1):
// at once if a provisional response arrived, else as soon as one does. The
// outcome arrives as Failed (487) unless a 2xx raced it, in which case the
// leg is ACKed and ended with BYE by the SIP layer.
func (l *Leg) Cancel() { l.CancelWithReason("") }

// CancelWithReason is Cancel with a Reason header (RFC 3326) on the CANCEL.
func (l *Leg) CancelWithReason(reason string) {
	l.mu.Lock()
	if l.answered || l.ended || l.cancelWanted {
		l.mu.Unlock()
		return
	}
	l.cancelWanted = true
	l.cancelReason = reason
	ready := l.provisional
	req := l.invite
	l.mu.Unlock()
	if ready {
		l.sendCancel(req)
	}
}

// sendCancel builds the CANCEL for req (RFC 3261 9.1: same Request-URI,
// Call-ID, To, From, CSeq number and top Via) and sends it.
func (l *Leg) sendCancel(req *gosip.Request) {
	c := gosip.NewRequest(gosip.CANCEL, req.Recipient)
	c.AppendHeader(req.Via().Clone())
	for _, h := range req.GetHeaders("Route") {
		c.AppendHeader(gosip.HeaderClone(h))
	}
	c.AppendHeader(gosip.HeaderClone(req.From()))
	c.AppendHeader(gosip.HeaderClone(req.To()))
	c.AppendHeader(gosip.HeaderClone(req.CallID()))
	c.AppendHeader(&gosip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: gosip.CANCEL})
	mf := gosip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	l.mu.Lock()
	if l.cancelReason != "" {
		c.AppendHeader(gosip.NewHeader("Reason", l.cancelReason))
	}
	l.mu.Unlock()
	c.SetTransport(req.Transport())
	c.SetBody(nil)
	l.agent.goOwned(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
		defer cancel()
		tx, err := l.agent.transact(ctx, c)
		if err != nil {
			l.logger().Warn("sending CANCEL failed", zap.Error(err))
			return
		}
		defer tx.Terminate()
		if _, err := l.agent.finalResponse(ctx, tx); err != nil {
			l.logger().Debug("CANCEL got no answer", zap.Error(err))
		}
	})
}
