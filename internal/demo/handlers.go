package demo

import (
	"context"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// userAgent names the PBX in User-Agent and Server headers.
const userAgent = "callctl-demo-pbx"

// allowHeader lists the methods the phones take (RFC 3261 §20.5).
const allowHeader = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY"

// handleRequests registers a handler per method with the SIP server. The
// handlers answer at once, except INVITE: a new call rings on its handler's
// goroutine until it ends (see answer).
func (s *Sim) handleRequests() {
	s.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if tag, _ := req.To().Params.Get("tag"); tag != "" {
			s.inDialog(req, tx, s.onReinvite)
			return
		}
		s.answer(req, tx)
	})
	s.srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) {
		if d := s.lookup(req); d != nil && req.CSeq().SeqNo == d.inviteSeq {
			d.ackOnce.Do(func() { close(d.acked) })
		}
	})
	s.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		s.inDialog(req, tx, func(d *dialog, req *sip.Request, tx sip.ServerTransaction) {
			respond(tx, req, 200, "OK", nil)
			d.log.Debug("far end hung up")
			d.farEndHungUp()
		})
	})
	s.srv.OnRequest(sip.INFO, func(req *sip.Request, tx sip.ServerTransaction) {
		s.inDialog(req, tx, func(d *dialog, req *sip.Request, tx sip.ServerTransaction) {
			// DTMF as application/dtmf-relay: the phone hears it and
			// carries on.
			d.log.Debug("INFO", zap.ByteString("body", req.Body()))
			respond(tx, req, 200, "OK", nil)
		})
	})
	s.srv.OnRequest(sip.REFER, func(req *sip.Request, tx sip.ServerTransaction) {
		s.inDialog(req, tx, s.onRefer)
	})
	s.srv.OnRequest(sip.NOTIFY, func(req *sip.Request, tx sip.ServerTransaction) {
		s.inDialog(req, tx, func(_ *dialog, req *sip.Request, tx sip.ServerTransaction) {
			respond(tx, req, 200, "OK", nil)
		})
	})
	s.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, 200, "OK", nil, sip.NewHeader("Allow", allowHeader), sip.NewHeader("Accept", "application/sdp"))
	})
	// A CANCEL that matched an INVITE is answered by the transaction layer;
	// this one matched none (RFC 3261 §9.2).
	s.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
	})
	s.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", allowHeader))
	})
}

// inDialog passes a request to handle with its dialog, or answers 481 when
// the phone has no such dialog (RFC 3261 §12.2.2).
func (s *Sim) inDialog(req *sip.Request, tx sip.ServerTransaction, handle func(*dialog, *sip.Request, sip.ServerTransaction)) {
	d := s.lookup(req)
	if d == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	handle(d, req, tx)
}

// onReinvite answers callctl's re-INVITE (hold, unhold, a new media
// address): the mirrored direction, or for an offerless re-INVITE an offer
// of its own (RFC 3261 §14.2; the answer in the ACK is taken as it comes).
func (s *Sim) onReinvite(d *dialog, req *sip.Request, tx sip.ServerTransaction) {
	var body []byte
	if len(req.Body()) == 0 {
		body = d.offer()
	} else {
		offer, err := parseSDP(req.Body())
		if err != nil || !offer.pcmu {
			respond(tx, req, 488, "Not Acceptable Here", nil)
			return
		}
		body = d.answerOffer(offer)
		d.log.Debug("re-INVITE answered", zap.String("offered", string(offer.dir)), zap.String("answered", string(offer.dir.answer())))
	}
	respond(tx, req, 200, "OK", body, s.contact(d.phone.number), sip.NewHeader("Content-Type", "application/sdp"))
}

// onRefer accepts a REFER (RFC 3515 §2.4.2) and hands it to the call's
// owner, which calls the target; one REFER at a time (else 491).
func (s *Sim) onRefer(d *dialog, req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Refer-To")
	if h == nil {
		respond(tx, req, 400, "Bad Request", nil, sip.NewHeader("Warning", `399 callctl-demo-pbx "no Refer-To"`))
		return
	}
	var uri sip.Uri
	v := strings.TrimSpace(h.Value())
	if i, j := strings.IndexByte(v, '<'), strings.IndexByte(v, '>'); i >= 0 && j > i {
		v = v[i+1 : j]
	}
	if err := sip.ParseUri(v, &uri); err != nil {
		respond(tx, req, 400, "Bad Request", nil, sip.NewHeader("Warning", `399 callctl-demo-pbx "bad Refer-To URI"`))
		return
	}
	select {
	case d.refer <- referral{target: uri.User, seq: req.CSeq().SeqNo}:
		s.transfers.Add(1)
		d.log.Info("transfer accepted", zap.String("target", uri.User))
		respond(tx, req, 202, "Accepted", nil)
	default:
		respond(tx, req, 491, "Request Pending", nil)
	}
}

// respond answers a request; a failed write only matters to the far end,
// which will retransmit.
func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.AppendHeader(sip.NewHeader("Server", userAgent))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// slogHandler sends sipgo's warnings and errors to zap at debug level: the
// demo's own lines say what happened to each call.
type slogHandler struct{ log *zap.Logger }

func (h slogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h slogHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	h.log.Debug(r.Message, fields...)
	return nil
}

func (h slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(attrs))
	for _, a := range attrs {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
	}
	return slogHandler{h.log.With(fields...)}
}

func (h slogHandler) WithGroup(name string) slog.Handler { return slogHandler{h.log.Named(name)} }
