package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"go.uber.org/zap"
)

// Requests callctl sends in a leg's dialog (RFC 3261 12.2.1): the
// transaction and its digest challenge, re-INVITE and its ACK, and any
// other method a session sends (REFER, NOTIFY, INFO, UPDATE).

var errGlare = errors.New("an INVITE transaction is already in progress on this leg")

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
