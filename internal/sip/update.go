package sip

import (
	"context"
	"errors"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// UPDATE (RFC 3311): a new offer inside an early or confirmed dialog,
// without the INVITE's three-way handshake. A leg sends one with Update; an
// UPDATE from the peer reaches the owner as a Request like any other.

// Allowed is the Allow header value callctl sends (RFC 3261 20.5): the
// methods it accepts, for an owner answering 405 Method Not Allowed.
func Allowed() string { return allowHeader }

// AllowsMethod reports whether an Allow header value (a comma-separated
// method list, RFC 3261 20.5) lists method.
func AllowsMethod(allow string, method gosip.RequestMethod) bool {
	for _, m := range strings.Split(allow, ",") {
		if strings.EqualFold(strings.TrimSpace(m), string(method)) {
			return true
		}
	}
	return false
}

// Update sends an UPDATE carrying offer (an SDP body; nil for a session
// refresh) in the background; its outcome arrives as a Result with Method
// UPDATE and the given tag. It works in an early dialog (RFC 3311 §5.1: an
// outbound leg once a provisional response with a To tag arrived; an
// inbound one, whose owner must have sent a provisional response with
// callctl's tag first) and in a confirmed dialog; it returns
// an error at once when the leg has ended or has no dialog yet.
func (l *Leg) Update(offer []byte, tag any) error {
	l.mu.Lock()
	switch {
	case l.ended:
		l.mu.Unlock()
		return errors.New("leg has ended")
	case !l.answered && (l.remoteTag == "" || (l.outbound && !l.provisional)):
		l.mu.Unlock()
		return errors.New("leg has no early or confirmed dialog")
	}
	req := l.newRequestLocked(gosip.UPDATE, offer)
	l.mu.Unlock()
	ok := l.agent.goOwned(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
		defer cancel()
		res, err := l.do(ctx, req)
		ev := &Result{Leg: l, Method: gosip.UPDATE, Tag: tag, Response: res, Err: err, Status: 408}
		if err == nil {
			ev.Status = res.StatusCode
		}
		l.emit(ev)
	})
	if !ok {
		return ErrClosed
	}
	return nil
}

// learnEarlyDialogLocked takes what a provisional response with a To tag
// says of the early dialog it makes (RFC 3261 12.1.2): the remote target
// (its Contact) and the route set (its Record-Route, reversed), so that an
// UPDATE before the answer reaches the callee. The 2xx sets both again.
func (l *Leg) learnEarlyDialogLocked(res *gosip.Response) {
	if tag, _ := res.To().Params.Get("tag"); tag == "" || tag != l.remoteTag || l.answered {
		return
	}
	if c := res.Contact(); c != nil {
		l.remoteTarget = c.Address
	}
	rrs := res.GetHeaders("Record-Route")
	if len(rrs) == 0 {
		return
	}
	l.routeSet = nil
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*gosip.RecordRouteHeader); ok {
			l.routeSet = append(l.routeSet, rr.Address)
		}
	}
}

// refreshTargetLocked applies an UPDATE's Contact: UPDATE is a target
// refresh request (RFC 3311 §5.2, RFC 3261 12.2.2).
func (l *Leg) refreshTargetLocked(req *gosip.Request) {
	if req.Method != gosip.UPDATE {
		return
	}
	if c := req.Contact(); c != nil {
		l.remoteTarget = c.Address
	}
}
