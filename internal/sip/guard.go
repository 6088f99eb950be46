package sip

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/flood"
)

// guard wraps every request handler. It is the second line of defence,
// after intake: once Close has begun nothing is handled; a request that
// came on a stream (TCP, whose chunks intake cannot check as messages) is
// checked here for its source, its rate and its form; and a panic in the
// handler is recovered, logged once with the Call-ID, counted and answered
// 500, so one bad message costs one transaction, never the process and
// every other call.
func (a *Agent) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *gosip.Request, tx gosip.ServerTransaction) {
		if a.closing.Load() {
			// The socket sipgo may have opened to answer a late request
			// (see Close) is closed; a listener's socket is left alone:
			// sipgo's Close is a no-op on listeners, which Close closes.
			if stx, ok := tx.(*gosip.ServerTx); ok {
				if c := stx.Connection(); c != nil {
					c.Close()
				}
			}
			return
		}
		defer a.recoverHandler(req, tx)
		if !a.admitStream(req, tx) {
			return
		}
		// UDP requests were checked by intake already; this is cheap and
		// keeps every handler safe however a request got here.
		if rej := checkRequestOn(req, req.Transport()); rej != nil {
			if !req.IsAck() {
				a.countSent(rej.status)
				if err := tx.Respond(a.rejectionResponse(req, rej)); err != nil {
					a.responseFailed(a.log.With(callIDField(req)), rej.status, err)
				}
			}
			return
		}
		// RFC 3261 19.1.4: an escaped unreserved character is the character
		// itself (sip:%32%30%30%31@ is sip:2001@), and routes match the
		// dialled number as a user types it.
		req.Recipient.User = unescapeUnreserved(req.Recipient.User)
		h(req, tx)
	}
}

// unescapeUnreserved decodes the %XX escapes of s that stand for an
// unreserved character (RFC 3261 25.1: alphanum and mark), and leaves the
// others escaped, so the URI stays the same URI.
func unescapeUnreserved(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil && isUnreserved(byte(v)) {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// admitStream applies sip.allow, sip.flood and sip.scanners to a request
// that did not come by UDP (intake did that for datagrams). Over the rate,
// a stream's request is answered 503 rather than left to time out: its
// source is real (a TCP handshake) and the answer ends the transaction.
func (a *Agent) admitStream(req *gosip.Request, tx gosip.ServerTransaction) bool {
	if req.Transport() == "UDP" || req.Transport() == "" {
		return true
	}
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	if !a.allowedAddr(ip) {
		a.shed(dropRefused, ip)
		return false
	}
	if req.IsAck() {
		return true
	}
	if v, _ := a.limiter.Allow(ip); v != flood.Allowed {
		if v == flood.Limited {
			a.shed(dropLimited, ip)
		} else {
			a.shed(dropBlocked, ip)
		}
		a.respond(tx, req, 503, "Service Unavailable", nil, gosip.NewHeader("Retry-After", "5"))
		return false
	}
	if ua := req.GetHeader("User-Agent"); ua != nil && a.isScanner([]byte("User-Agent: "+ua.Value()+"\r\n\r\n")) {
		a.shed(dropScanner, ip)
		return false
	}
	return true
}

// recoverHandler is deferred by guard: a panic is logged once, counted and
// answered 500 (RFC 3261 21.5.1) if the request can still be answered.
func (a *Agent) recoverHandler(req *gosip.Request, tx gosip.ServerTransaction) {
	r := recover()
	if r == nil {
		return
	}
	a.panics.Add(1)
	a.log.Error("sip: request handler panicked; request answered 500",
		zap.String("method", string(req.Method)), callIDField(req), zap.Any("panic", r), zap.StackSkip("stack", 1))
	if req.IsAck() || tx == nil {
		return
	}
	func() {
		defer func() { _ = recover() }() // the request may be too broken to answer
		a.respond(tx, req, 500, "Server Internal Error", nil)
	}()
}

// recoverOwned is deferred by goroutines the agent owns (goOwned): a panic
// on one leg's goroutine is logged and counted, and the process goes on.
func (a *Agent) recoverOwned() {
	if r := recover(); r != nil {
		a.panics.Add(1)
		a.log.Error("sip: leg goroutine panicked", zap.Any("panic", r), zap.StackSkip("stack", 1))
	}
}
