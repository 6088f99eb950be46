package demo

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// answer is a phone taking a call callctl sends the PBX (a B leg). It runs
// on the INVITE's handler goroutine, counted in the Sim's, until the call
// ends: a phone already in a call, or by chance, answers 486 Busy Here;
// otherwise it rings (180) and answers after ringMin–ringMax, or never
// (then callctl's ring timeout or the caller's CANCEL ends the ringing).
func (s *Sim) answer(req *sip.Request, tx sip.ServerTransaction) {
	if !s.track() {
		respond(tx, req, 503, "Service Unavailable", nil)
		return
	}
	defer s.wg.Done()
	s.rang.Add(1)
	p, ok := lookupPhone(req.Recipient.User)
	if !ok {
		respond(tx, req, 404, "Not Found", nil)
		return
	}
	offer, err := parseSDP(req.Body())
	if err != nil || !offer.pcmu {
		// The phones speak PCMU only (RFC 3264 §6: reject what cannot be
		// answered).
		respond(tx, req, 488, "Not Acceptable Here", nil)
		return
	}
	busy := s.reserve(p.number)
	defer s.release(p.number)

	cancelled := make(chan struct{})
	var once sync.Once
	if !tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) }) {
		return // cancelled already; the transaction layer answered 487
	}
	localTag := sip.GenerateTagN(16)
	reply := func(code int, reason string, body []byte) (*sip.Response, error) {
		res := sip.NewResponseFromRequest(req, code, reason, body)
		res.To().Params.Add("tag", localTag)
		res.AppendHeader(s.contact(p.number))
		res.AppendHeader(sip.NewHeader("Server", userAgent))
		if len(body) > 0 {
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
		return res, tx.Respond(res)
	}
	log := s.log.With(zap.String("phone", p.number), zap.String("call_id", req.CallID().Value()), zap.String("from", req.From().Address.User))

	// wait lets the phone ring (or think) for d; it reports false when the
	// caller cancelled or the Sim stopped meanwhile (then 487 or 480 was sent).
	wait := func(d time.Duration) bool {
		var ring <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			ring = t.C
		}
		select {
		case <-ring:
			return true
		case <-cancelled:
			log.Debug("ringing cancelled")
			return false
		case <-tx.Done():
			return false
		case <-s.ctx.Done():
			_, _ = reply(480, "Temporarily Unavailable", nil)
			return false
		}
	}
	if busy || !s.opts.answerAll && s.chance(busyChance) {
		if wait(s.between(busyMin, busyMax)) {
			log.Debug("busy")
			_, _ = reply(486, "Busy Here", nil)
		}
		return
	}
	_, _ = reply(180, "Ringing", nil)
	ring := s.between(ringMin, ringMax)
	if !s.opts.answerAll && s.chance(noAnswerChance) {
		ring = 0 // until cancelled
	}
	if !wait(ring) {
		return
	}

	st, err := openStream(p.number)
	if err != nil {
		log.Warn("cannot open an RTP socket", zap.Error(err))
		_, _ = reply(500, "Server Internal Error", nil)
		return
	}
	s.addStream(st)
	defer s.closeStream(st)
	d := newDialog(s, p, req.CallID().Value(), localTag, st)
	d.log = log
	d.localURI = req.To().Address
	d.remoteURI = req.From().Address
	d.remoteName = req.From().DisplayName
	d.remoteTag, _ = req.From().Params.Get("tag")
	d.remoteTarget = req.From().Address
	if c := req.Contact(); c != nil {
		d.remoteTarget = c.Address
	}
	d.inviteSeq = req.CSeq().SeqNo
	s.register(d)
	defer d.end()
	ok200, err := reply(200, "OK", d.answerOffer(offer))
	if err != nil {
		log.Debug("cannot answer", zap.Error(err))
		return
	}
	log.Debug("answered")
	if !s.awaitAck(d, tx, ok200) {
		// RFC 3261 §13.3.1.4: no ACK, so the session ends with a BYE.
		d.hangUp()
		return
	}
	s.converse(d)
}

// awaitAck retransmits the phone's 2xx until callctl's ACK arrives (RFC 3261
// §13.3.1.4: T1, doubling up to T2, for 64·T1 at most). It reports false if
// no ACK came, the far end hung up, or the Sim stopped.
func (s *Sim) awaitAck(d *dialog, tx sip.ServerTransaction, ok200 *sip.Response) bool {
	interval := sip.T1
	resend := time.NewTimer(interval)
	defer resend.Stop()
	give := time.NewTimer(64 * sip.T1)
	defer give.Stop()
	for {
		select {
		case <-d.acked:
			return true
		case <-d.bye:
			return false
		case <-s.ctx.Done():
			return false
		case <-give.C:
			return false
		case <-resend.C:
			_ = tx.Respond(ok200)
			interval = min(2*interval, sip.T2)
			resend.Reset(interval)
		}
	}
}
