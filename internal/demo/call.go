package demo

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// call places a call from phone from to number through callctl and runs it
// to its end: ringing (the caller gives up with CANCEL after a while, or
// when the Sim stops), then, if answered, the conversation. report, when
// set, hears the INVITE's final status once, before the conversation starts
// (a transfer reports it to the transferor's side). The caller's phone must
// already be marked in the call (pickCall, reserve).
func (s *Sim) call(from phone, to string, report func(code int, reason string)) {
	if report == nil {
		report = func(int, string) {}
	}
	if s.ctx.Err() != nil {
		report(503, "Service Unavailable")
		return
	}
	callee, _ := lookupPhone(to)
	st, err := openStream(from.number)
	if err != nil {
		s.log.Warn("cannot open an RTP socket", zap.Error(err))
		report(500, "Server Internal Error")
		return
	}
	s.addStream(st)
	defer s.closeStream(st)

	d := newDialog(s, from, sip.GenerateTagN(20)+"@callctl-demo", sip.GenerateTagN(16), st)
	d.localURI = sip.Uri{Scheme: "sip", User: from.number, Host: s.host}
	d.remoteURI = sip.Uri{Scheme: "sip", User: to, Host: s.callctl.Host}
	d.remoteName = callee.name
	d.remoteTarget = sip.Uri{Scheme: "sip", User: to, Host: s.callctl.Host, Port: s.callctl.Port}
	d.withEvents = true
	req := d.newRequest(sip.INVITE, "application/sdp", d.offer())
	req.AppendHeader(sip.NewHeader("Allow", allowHeader))
	d.inviteSeq = req.CSeq().SeqNo
	log := d.log.With(zap.String("from", from.number), zap.String("to", to))

	s.register(d)
	defer d.end()
	s.placed.Add(1)
	tx, err := s.client.TransactionRequest(context.Background(), req)
	if err != nil {
		log.Warn("cannot send INVITE", zap.Error(err))
		report(503, "Service Unavailable")
		return
	}
	defer tx.Terminate()
	log.Debug("calling")

	res, gaveUp := s.awaitAnswer(req, tx)
	switch {
	case res == nil:
		log.Info("call got no final answer")
		report(408, "Request Timeout")
		return
	case !res.IsSuccess():
		if gaveUp && res.StatusCode == 487 {
			s.cancelled.Add(1)
			log.Info("caller gave up")
		} else {
			s.refused.Add(1)
			log.Info("call refused", zap.Int("status", res.StatusCode), zap.String("reason", res.Reason))
		}
		report(res.StatusCode, res.Reason)
		return
	}

	// Answered (RFC 3261 §13.2.2.4): the dialog takes the callee's tag and
	// Contact, the ACK goes out, and again for every retransmitted 2xx.
	d.mu.Lock()
	d.remoteTag, _ = res.To().Params.Get("tag")
	if c := res.Contact(); c != nil {
		d.remoteTarget = c.Address
	}
	d.mu.Unlock()
	if answer, err := parseSDP(res.Body()); err == nil {
		// The phone offered sendrecv; it sends unless the answer is
		// sendonly or inactive.
		st.update(answer.addr, answer.dir.answer())
	}
	ack := d.newRequest(sip.ACK, "", nil)
	if err := s.client.WriteRequest(ack); err != nil {
		log.Warn("cannot send ACK", zap.Error(err))
	}
	again := ack.Clone()
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			_ = s.client.WriteRequest(again.Clone())
		}
	})
	if gaveUp {
		// The 2xx crossed the CANCEL: the call is up, and ended at once.
		d.hangUp()
		report(487, "Request Terminated")
		return
	}
	s.answered.Add(1)
	log.Info("call answered")
	report(200, "OK")
	s.converse(d)
}

// awaitAnswer waits for the INVITE's final response. The caller's patience
// runs out after patienceMin–patienceMax, or at once when the Sim stops:
// then it sends CANCEL (RFC 3261 §9.1) and waits a little longer for the
// 487 (or a 2xx that crossed it). gaveUp says a CANCEL was sent.
func (s *Sim) awaitAnswer(req *sip.Request, tx sip.ClientTransaction) (res *sip.Response, gaveUp bool) {
	patience := time.NewTimer(s.between(patienceMin, patienceMax))
	defer patience.Stop()
	stopping := s.ctx.Done()
	var cancelTx sip.ClientTransaction
	var cancelResponses <-chan *sip.Response
	var deadline <-chan time.Time
	defer func() {
		if cancelTx != nil {
			cancelTx.Terminate()
		}
	}()
	giveUp := func() {
		if gaveUp {
			return
		}
		gaveUp = true
		stopping = nil
		deadline = time.After(hangupWait)
		var err error
		if cancelTx, err = s.client.TransactionRequest(context.Background(), cancelOf(req)); err == nil {
			cancelResponses = cancelTx.Responses()
		}
	}
	for {
		select {
		case r := <-tx.Responses():
			if !r.IsProvisional() {
				return r, gaveUp
			}
		case <-tx.Done():
			return nil, gaveUp
		case <-patience.C:
			giveUp()
		case <-stopping:
			giveUp()
		case <-cancelResponses:
			cancelResponses = nil // 200 for the CANCEL; the INVITE's 487 follows
		case <-deadline:
			return nil, gaveUp
		}
	}
}

// cancelOf builds the CANCEL of an INVITE (RFC 3261 §9.1): same
// Request-URI, Call-ID, From, To, CSeq number and Via branch.
func cancelOf(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(inv.Via().Clone())
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetBody(nil)
	return c
}

// converse is an answered call: the phone streams its voice until it hangs
// up (after talkMin–talkMax, or when the Sim stops) or the far end does;
// meanwhile it carries out REFERs.
func (s *Sim) converse(d *dialog) {
	d.media.start()
	hangup := time.NewTimer(s.between(talkMin, talkMax))
	defer hangup.Stop()
	for {
		select {
		case <-hangup.C:
			d.log.Info("phone hangs up")
			d.hangUp()
			return
		case <-d.bye:
			return
		case r := <-d.refer:
			if s.transfer(d, r) {
				return
			}
		case <-s.ctx.Done():
			d.hangUp()
			return
		}
	}
}

// transfer carries out a REFER (RFC 3515 §2.4.4): NOTIFY 100 Trying, a new
// call from the phone to the target through callctl, a final NOTIFY with
// that call's status and, when it was answered, BYE on the old dialog; the
// new call then runs to its end here. It reports whether the old dialog has
// ended.
func (s *Sim) transfer(d *dialog, r referral) bool {
	d.notify(r, 100, "Trying", false)
	if _, ok := lookupPhone(r.target); !ok {
		d.log.Info("transfer target is no phone of the PBX", zap.String("target", r.target))
		d.notify(r, 404, "Not Found", true)
		return false
	}
	s.reserve(d.phone.number)
	defer s.release(d.phone.number)
	s.call(d.phone, r.target, func(code int, reason string) {
		d.notify(r, code, reason, true)
		if code/100 == 2 {
			d.hangUp()
		}
	})
	select {
	case <-d.bye:
		return true
	default:
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}
