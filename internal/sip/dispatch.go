package sip

import (
	"strconv"

	gosip "github.com/emiago/sipgo/sip"
)

// How requests reach their dialog: new INVITEs make a Leg, in-dialog
// requests find theirs by Call-ID and tag (RFC 3261 12.2.2), OPTIONS and
// strays are answered here.

func (a *Agent) respond(tx gosip.ServerTransaction, req *gosip.Request, status int, reason string, body []byte, hdrs ...gosip.Header) {
	res := gosip.NewResponseFromRequest(req, status, reason, body)
	res.AppendHeader(gosip.NewHeader("Server", a.cfg.UserAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	a.countSent(status)
	if err := tx.Respond(res); err != nil {
		a.responseFailed(a.log.With(callIDField(req)), status, err)
	}
}

func (a *Agent) handleOptions(req *gosip.Request, tx gosip.ServerTransaction) {
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		if a.lookup(req) == nil {
			a.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
			return
		}
	}
	if a.cfg.Accepting != nil && !a.cfg.Accepting() {
		a.respond(tx, req, 503, "Service Unavailable", nil, gosip.NewHeader("Retry-After", strconv.Itoa(a.cfg.RetryAfter)))
		return
	}
	// RFC 3261 11.2: say what we support.
	a.respond(tx, req, 200, "OK", nil,
		gosip.NewHeader("Allow", allowHeader),
		gosip.NewHeader("Accept", "application/sdp"),
		gosip.NewHeader("Supported", supportedHeader))
}

func (a *Agent) handleUnsupported(req *gosip.Request, tx gosip.ServerTransaction) {
	a.respond(tx, req, 405, "Method Not Allowed", nil, gosip.NewHeader("Allow", allowHeader))
}

// handleStrayCancel sees only CANCELs that matched no INVITE transaction
// (matched ones are answered by the transaction layer): RFC 3261 9.2 says 481.
func (a *Agent) handleStrayCancel(req *gosip.Request, tx gosip.ServerTransaction) {
	a.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
}

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

// lookup finds the leg an in-dialog request belongs to: the request's To tag
// is our local tag.
func (a *Agent) lookup(req *gosip.Request) *Leg {
	cid := req.CallID()
	to := req.To()
	if cid == nil || to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dialogs[dialogKey(cid.Value(), tag)]
}

func (a *Agent) register(l *Leg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dialogs[dialogKey(l.callID, l.localTag)] = l
	if l.outbound {
		a.outCalls[l.callID] = l
	}
}

func (a *Agent) unregister(l *Leg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dialogs[dialogKey(l.callID, l.localTag)] == l {
		delete(a.dialogs, dialogKey(l.callID, l.localTag))
	}
	if a.outCalls[l.callID] == l {
		delete(a.outCalls, l.callID)
	}
}

// Dialogs returns the number of registered dialogs (for leak checks).
func (a *Agent) Dialogs() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.dialogs)
}

func (a *Agent) handleInvite(req *gosip.Request, tx gosip.ServerTransaction) {
	if a.absorbRetransmission(req, tx) {
		return
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		a.handleInDialog(req, tx)
		return
	}
	if a.refuseSmallInterval(req, tx) {
		return
	}
	// RFC 3261 16.3 / 8.2.2.2: a request that callctl itself sent, arriving
	// back, is a loop.
	a.mu.Lock()
	_, looped := a.outCalls[req.CallID().Value()]
	a.mu.Unlock()
	if looped {
		a.log.Warn("loop detected: INVITE sent by callctl came back", callIDField(req))
		a.respond(tx, req, 482, "Loop Detected", nil)
		return
	}
	// RFC 3261 16.6 step 3: the B leg carries Max-Forwards less one, so a
	// request that arrives with 1 (or 0) would leave with none left: 483,
	// and a loop through other B2BUAs ends after at most 70 hops.
	if mf := req.MaxForwards(); mf == nil || mf.Val() <= 1 {
		a.respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	in := newInbound(a, req, tx)
	if a.onInvite == nil {
		in.Respond(503, "Service Unavailable", nil)
		return
	}
	a.register(in)
	defer func() {
		if r := recover(); r != nil {
			a.unregister(in) // guard answers 500; the dialog never was
			panic(r)
		}
	}()
	a.onInvite(in)
	// The caller's CANCEL is answered by the transaction layer (200, then 487
	// to the INVITE); tell the owner.
	// Once the final response is out a CANCEL changes nothing (RFC 3261
	// 9.2), so the callback lets go of the leg then (see legRef).
	ref := newLegRef(in)
	defer ref.clear()
	cancelled := func(*gosip.Request) {
		if l := ref.get(); l != nil {
			l.cancelled()
		}
	}
	if !tx.OnCancel(cancelled) {
		in.cancelled()
	}
	select {
	case <-in.final:
	case <-tx.Done():
		in.cancelled()
	}
}

func (a *Agent) handleAck(req *gosip.Request, tx gosip.ServerTransaction) {
	if l := a.lookup(req); l != nil {
		l.onAck(req)
	}
}

func (a *Agent) handleInDialog(req *gosip.Request, tx gosip.ServerTransaction) {
	l := a.lookup(req)
	if l == nil {
		if a.absorbRetransmission(req, tx) {
			return
		}
		// RFC 3261 12.2.2: a request for a dialog we don't have.
		a.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	switch {
	case req.Method == gosip.BYE:
		l.onBye(req, tx)
	case a.refuseSmallInterval(req, tx):
	case req.Method == gosip.PRACK:
		l.onPrack(req, tx)
	default:
		l.onRequest(req, tx)
	}
}
