package sip

import (
	"math/rand/v2"
	"strings"

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
	l.transport = strings.ToUpper(req.Transport())
	if l.transport == "TCP" {
		// Reuse the connection the INVITE came on (RFC 5923 style flow reuse).
		l.destination = req.Source()
	}
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
		l.answerInvite(l.serverTx, l.invite, status, reason, body, hdrs...)
		l.finalOnce.Do(func() { close(l.final) })
		return
	}
	res := gosip.NewResponseFromRequest(l.invite, status, reason, body)
	if status > 100 {
		if to := res.To(); to != nil {
			to.Params.Add("tag", l.localTag)
		}
	}
	if status > 100 && status < 200 {
		res.AppendHeader(l.agent.contact(l.transport))
	}
	res.AppendHeader(gosip.NewHeader("Server", l.agent.cfg.UserAgent))
	if len(body) > 0 {
		res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	l.agent.countSent(status)
	if err := l.serverTx.Respond(res); err != nil {
		l.logger().Debug("respond failed", zap.Int("status", status), zap.Error(err))
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
