package sip

import (
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// newInbound makes the UAS leg for a dialog-creating INVITE (RFC 3261 12.1.1).
func newInbound(a *Agent, req *gosip.Request, tx gosip.ServerTransaction) *Leg {
	l := &Leg{
		agent:    a,
		id:       newLegID("a"),
		callID:   req.CallID().Value(),
		localTag: a.newTag(),
		invite:   req,
		serverTx: tx,
		final:    make(chan struct{}),
	}
	from, to := req.From(), req.To()
	l.remoteURI, l.remoteName = from.Address, from.DisplayName
	l.remoteTag, _ = from.Params.Get("tag")
	l.localURI, l.localName = to.Address, to.DisplayName
	if c := req.Contact(); c != nil {
		l.remoteTarget = c.Address
	} else {
		l.remoteTarget = from.Address
	}
	// RFC 3261 12.1.1: the UAS route set is the Record-Route list in order.
	for _, h := range req.GetHeaders("Record-Route") {
		if rr, ok := h.(*gosip.RecordRouteHeader); ok {
			l.routeSet = append(l.routeSet, rr.Address)
		}
	}
	l.remoteSeq = req.CSeq().SeqNo
	l.localSeq = rand.Uint32N(1 << 15)
	// RFC 3262 3: provisionals go reliably where the caller requires it
	// (with Supported: 100rel alone they go as they are).
	l.rel.required = hasOption(req, "Require", "100rel")
	l.transport = strings.ToUpper(req.Transport())
	if reliable(l.transport) {
		// Reuse the connection the INVITE came on (RFC 5923 style flow reuse).
		l.destination = req.Source()
	}
	// checkRequestOn let a sips: Request-URI in only over TLS.
	l.sips = strings.EqualFold(req.Recipient.Scheme, "sips")
	l.SetLogger(a.log)
	return l
}

// Respond sends a response to an inbound leg's INVITE. Provisional responses
// (status > 100) and 2xx carry callctl's To tag and Contact; a 2xx is
// retransmitted until ACKed (Acked or AckTimeout follow). A final non-2xx
// ends the leg.
func (l *Leg) Respond(status int, reason string, body []byte, hdrs ...gosip.Header) {
	if l.outbound || l.serverTx == nil {
		return
	}
	if status >= 200 && status < 300 {
		send := func() {
			if l.Ended() {
				return
			}
			l.answerInvite(l.serverTx, l.invite, status, reason, body, hdrs...)
			l.finalOnce.Do(func() { close(l.final) })
		}
		if !l.holdFinal(send) {
			send()
		}
		return
	}
	if status >= 200 {
		l.stopReliable()
	}
	res := gosip.NewResponseFromRequest(l.invite, status, reason, body)
	if status > 100 {
		if to := res.To(); to != nil {
			to.Params.Add("tag", l.localTag)
		}
	}
	if status > 100 && status < 200 {
		res.AppendHeader(l.contactHeader())
	}
	res.AppendHeader(gosip.NewHeader("Server", l.agent.cfg.UserAgent))
	if len(body) > 0 {
		res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if status > 100 && status < 200 {
		l.mu.Lock()
		l.rememberSDPLocked(body)
		reliable := l.rel.required
		l.mu.Unlock()
		if reliable {
			l.respondReliably(res)
			return
		}
	}
	l.agent.countSent(status)
	if err := l.serverTx.Respond(res); err != nil {
		l.agent.responseFailed(l.logger(), status, err)
	}
	if status >= 300 {
		l.Close()
	}
}

// cancelled is called when the caller's CANCEL (or the transaction's end)
// finished an unanswered inbound INVITE.
func (l *Leg) cancelled() {
	l.mu.Lock()
	if l.answered || l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	l.emitLocked(&Cancelled{Leg: l})
	l.sink = nil
	l.mu.Unlock()
	l.finalOnce.Do(func() { close(l.final) })
	l.agent.unregister(l)
}

// answerInvite sends a 2xx to an INVITE on this leg and retransmits it until
// the ACK arrives (RFC 3261 13.3.1.4).
func (l *Leg) answerInvite(tx gosip.ServerTransaction, req *gosip.Request, status int, reason string, body []byte, hdrs ...gosip.Header) {
	res := gosip.NewResponseFromRequest(req, status, reason, body)
	if to := res.To(); to != nil {
		to.Params.Add("tag", l.localTag)
	}
	res.AppendHeader(l.contactHeader())
	res.AppendHeader(gosip.NewHeader("Server", l.agent.cfg.UserAgent))
	res.AppendHeader(gosip.NewHeader("Allow", allowHeader))
	res.AppendHeader(gosip.NewHeader("Supported", supportedHeader))
	if len(body) > 0 {
		res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	w := &ackWait{cseq: req.CSeq().SeqNo, done: make(chan struct{})}
	l.mu.Lock()
	l.awaitAck = w
	l.answered = true
	l.rememberSDPLocked(body)
	// A 2xx to an INVITE starts or refreshes the session timer (RFC 4028 9).
	for _, h := range l.uasTimerLocked(req) {
		res.AppendHeader(h)
	}
	l.mu.Unlock()
	stream := reliable(l.transport)
	send := tx.Respond
	if stx, ok := tx.(*gosip.ServerTx); ok && !stream {
		// Over UDP the transaction ends here and the 2xx goes out on its
		// socket: sipgo would hold both 32 s in Accepted state (RFC 6026
		// 7.1) for what the 2xx retransmissions below and the answered
		// record (recent.go) do. Recorded first: a retransmitted INVITE
		// must never find neither.
		if c := stx.Connection(); c != nil {
			l.agent.endAnswered(tx, req, status)
			send = func(r *gosip.Response) error { return c.WriteMsg(r) }
		}
	}
	l.agent.countSent(status)
	if err := send(res); err != nil {
		l.agent.responseFailed(l.logger(), status, err)
	}
	l.agent.goOwned(func() {
		interval := t1()
		timer := time.NewTimer(interval)
		defer timer.Stop()
		deadline := time.NewTimer(64 * t1())
		defer deadline.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-deadline.C:
				l.mu.Lock()
				if l.awaitAck == w {
					l.awaitAck = nil
					w.stop()
					l.emitLocked(&AckTimeout{Leg: l})
				}
				l.mu.Unlock()
				return
			case <-timer.C:
				if !stream {
					if err := send(res); err != nil {
						l.logger().Debug("2xx retransmission failed", zap.Error(err))
					}
				}
				interval = min(2*interval, t2())
				timer.Reset(interval)
			}
		}
	})
}

// ackWait tracks one 2xx waiting for its ACK.
type ackWait struct {
	cseq uint32
	done chan struct{}
	once sync.Once
}

func (w *ackWait) stop() { w.once.Do(func() { close(w.done) }) }

func (w *ackWait) waitDone(max time.Duration) {
	select {
	case <-w.done:
	case <-time.After(max):
	}
}
