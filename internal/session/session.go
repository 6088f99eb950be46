package session

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Session is one call through callctl. Its goroutine (run) is the only code
// that changes it; everything else posts to its inbox.
type Session struct {
	id  string
	e   *Engine
	log *zap.Logger
	q   inbox

	// Owned by the run goroutine.
	a, b       *sip.Leg
	offer      media.MediaInfo
	wa, wb     *media.SDPWriter // callctl's o= line toward each party
	answered   bool
	ringTimer  *time.Timer
	relay      *relay
	holdA      bool // the caller's last offer put the callee on hold
	holdB      bool // the callee's last offer put the caller on hold
	finished   bool
	lastToA    []byte // the last SDP callctl sent to each party
	lastToB    []byte
	rawFromA   []byte // the last SDP each party sent callctl
	rawFromB   []byte
	fromA      media.MediaInfo // and what it said
	fromB      media.MediaInfo
	offerlessA bool // an offerless re-INVITE was answered; its ACK has the answer
	offerlessB bool
	allowB     string      // the Allow of the callee's latest response (update.go)
	delayed    bool        // the caller's INVITE had no offer: the callee's 2xx has it, the caller's ACK the answer (offer.go)
	live       [2]liveness // the caller's and the callee's media, for the media timeouts
	srtp       legSRTP     // each leg's SRTP (srtp.go)

	op          *activeOp
	opQueue     []*opRequest
	inviting    map[*sip.Leg]*outInvite
	tapped      map[*sip.Leg]int       // the payload type each leg's DTMF tap watches (tapDtmf)
	dtmfLines   map[*sip.Leg]*dtmfLine // digits on their way to each party (dtmfline.go)
	timers      []*time.Timer
	transfer    *transfer
	transferGen int
	opsApplied  []string        // "hold ok", … for the call record
	ctx         context.Context // cancelled when the session ends
	cancel      context.CancelFunc
	wg          sync.WaitGroup // goroutines the session started (DTMF senders)

	mu     sync.RWMutex // guards snap, ea, eb for readers
	snap   Snapshot
	ea, eb *media.Endpoint
}

// relay is a re-INVITE from one party on its way to the other.
type relay struct {
	from  *sip.Leg
	req   *sip.Request
	offer media.MediaInfo
	body  []byte // the party's offer
	out   []byte // as sent to the other party
}

type abortCmd struct{ reason string }
type ringTimeout struct{ leg *sip.Leg }

func newSession(e *Engine, in *sip.Leg, offer media.MediaInfo) *Session {
	req := in.Invite()
	s := &Session{id: newID(), e: e, a: in, offer: offer, q: newInbox(), inviting: map[*sip.Leg]*outInvite{}, tapped: map[*sip.Leg]int{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fromA, s.rawFromA = offer, req.Body()
	if len(req.Body()) == 0 {
		s.fromA.TelephoneEvent = -1 // nothing known until the caller's ACK
	}
	s.fromB.TelephoneEvent = -1 // nothing known until the callee's SDP
	// WithLazy here and for the legs' loggers: zap clones the encoder for
	// a child logger's fields only once it logs at an enabled level, not
	// for every call up front.
	s.log = e.log.WithLazy(zap.String("session", s.id), zap.String("call_id", in.CallID()))
	now := time.Now()
	from := req.From()
	s.snap = Snapshot{
		ID:         s.id,
		State:      Setup,
		Caller:     Party{Number: from.Address.User, DisplayName: from.DisplayName, LegID: in.ID(), CallID: in.CallID()},
		Callee:     Party{Number: req.Recipient.User},
		Dialled:    req.Recipient.User,
		Start:      now,
		StateSince: now,
	}
	in.SetLogger(e.log.WithLazy(zap.String("session", s.id)))
	in.SetSink(s.sink)
	e.reg.add(s)
	e.reg.publish(Event{Type: EventStateChanged, SessionID: s.id, State: Setup, Reason: "INVITE from " + from.Address.User, Time: now, Session: s.Snapshot()})
	return s
}

// ID is the session's id.
func (s *Session) ID() string { return s.id }

// Snapshot returns a copy of the session's public state.
func (s *Session) Snapshot() Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := s.snap
	snap.Legs = nil
	if s.e != nil && s.e.cfg.Listen != nil {
		snap.Listeners = s.e.cfg.Listen.Count(s.id)
	}
	for _, l := range []struct {
		role string
		ep   *media.Endpoint
	}{{"caller", s.ea}, {"callee", s.eb}} {
		if l.ep == nil {
			continue
		}
		st := l.ep.Stats()
		snap.Legs = append(snap.Legs, LegStats{Role: l.role, PacketsIn: st.PacketsIn, PacketsOut: st.PacketsOut,
			BytesIn: st.BytesIn, BytesOut: st.BytesOut, Lost: st.Lost})
	}
	return snap
}

func (s *Session) state() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snap.State
}

// recordEnd hands the ended session to the engine's OnEnd.
func (s *Session) recordEnd() {
	if s.e.cfg.OnEnd != nil && s.state().Ended() {
		s.e.cfg.OnEnd(s.Snapshot(), slices.Clone(s.opsApplied))
	}
}

// sink receives the legs' events; it never blocks.
func (s *Session) sink(ev sip.Event) { s.q.push(ev) }

func (s *Session) post(v any) { s.q.push(v) }

// transition moves the session to a new state if the table allows it, and
// publishes the change.
func (s *Session) transition(to State, reason string) bool {
	s.mu.Lock()
	from := s.snap.State
	if from == to {
		s.mu.Unlock()
		return true
	}
	if !CanTransition(from, to) {
		s.mu.Unlock()
		s.log.Error("refused state change", zap.Error(&TransitionError{From: from, To: to}))
		return false
	}
	now := time.Now()
	s.snap.State = to
	s.snap.StateSince = now
	if to == InCall && s.snap.Answer.IsZero() {
		s.snap.Answer = now
	}
	if to.Ended() {
		s.snap.End = now
		s.snap.EndReason = reason
	}
	s.mu.Unlock()
	s.log.Info("session state", zap.String("state", string(to)), zap.String("previous", string(from)), zap.String("reason", reason))
	s.e.reg.publish(Event{Type: EventStateChanged, SessionID: s.id, State: to, Previous: from, Reason: reason, Time: now, Session: s.Snapshot()})
	return true
}

// publishOp reports an operation's outcome (or progress) to watchers.
func (s *Session) publishOp(name string, args map[string]string, result, msg string) {
	snap := s.Snapshot()
	s.e.reg.publish(Event{Type: EventOperation, SessionID: s.id, State: snap.State, Time: time.Now(), Session: snap,
		Operation: &OperationInfo{Name: name, Args: args, Result: result, Error: msg}})
}

// publishDTMF reports a digit a party sent.
func (s *Session) publishDTMF(d DTMFInfo) {
	snap := s.Snapshot()
	s.e.reg.publish(Event{Type: EventDTMFReceived, SessionID: s.id, State: snap.State, Time: time.Now(), Session: snap, DTMF: &d})
}

// end moves to an ended state and stops the loop. A session whose transfer
// completed is already ended: it just stops. Should the table refuse to (a
// bug), the session still ends, as ERROR with the reason, which every live
// state may reach: it never stops live.
func (s *Session) end(to State, reason string) {
	if s.state() == TransferCompleted {
		s.finished = true
		return
	}
	ok := s.transition(to, reason)
	if !ok && !s.state().Ended() {
		s.transition(Error, fmt.Sprintf("%s (%s refused in %s)", reason, to, s.state()))
	}
	if !s.state().Ended() {
		return
	}
	s.finished = true
	if ok && to == Closed {
		// Released at once: readers no longer find it, even before
		// the goroutine has finished tidying up.
		s.e.reg.retire(s, s.Snapshot())
	}
}

func (s *Session) run() {
	defer s.cleanup()
	if !s.start() {
		return
	}
	var tick <-chan time.Time
	if every := mediaCheckEvery(&s.e.cfg); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	defer s.failQueuedOps()
	for !s.finished {
		select {
		case <-s.q.signal:
			for _, item := range s.q.take() {
				s.handle(item)
				if s.finished {
					break
				}
			}
		case now := <-tick:
			s.checkMedia(now)
		}
	}
}

// start allocates the relay, sends the offer on to the callee and starts the
// ring timer. It returns false when the call could not be placed.
func (s *Session) start() bool {
	e := s.e
	epCfg := e.endpointConfig(s.log)
	ea, err := e.ports.Allocate(epCfg)
	if err != nil {
		return s.refuse(503, "Service Unavailable", "no RTP ports: "+err.Error())
	}
	eb, err := e.ports.Allocate(epCfg)
	if err != nil {
		ea.Close()
		return s.refuse(503, "Service Unavailable", "no RTP ports: "+err.Error())
	}
	s.mu.Lock()
	s.ea, s.eb = ea, eb
	s.mu.Unlock()
	// The caller's digits are seen from its first packet, early media
	// included (issue 11 point 8).
	s.tapDtmf(s.a, s.fromA.TelephoneEvent)
	s.wa, s.wb = media.NewSDPWriter("callctl"), media.NewSDPWriter("callctl")
	if !s.setupSRTP() {
		return false
	}
	var offerB []byte
	if delayed := len(s.a.Invite().Body()) == 0; delayed {
		// Delayed offer (RFC 3264 §4): carried through offerless.
		s.delayed = true
	} else {
		ea.SetRemote(s.offer.Remote, s.offer.RTCP)
		if offerB, err = s.wb.Rewrite(s.a.Invite().Body(), eb.Advertise(), eb.Port()); err != nil {
			return s.refuse(488, "Not Acceptable Here", "rewriting offer: "+err.Error())
		}
		s.lastToB = offerB
	}
	target, transport, err := e.target(s.snap.Dialled)
	if err != nil {
		return s.refuse(500, "Server Internal Error", err.Error())
	}
	if s.a.IsSIPS() {
		var ok bool
		if target, ok = secureTarget(target, transport); !ok {
			return s.refuse(480, "Temporarily Unavailable", "sips: call but the callee is reached over "+transport+", not tls (RFC 3261 26.2.2)")
		}
	}
	s.a.Respond(100, "Trying", nil)
	maxFwd := maxForwards(s.a.Invite())
	b, err := e.agent.Dial(sip.DialOptions{
		Target:       target,
		Transport:    transport,
		FromUser:     s.snap.Caller.Number,
		FromName:     s.snap.Caller.DisplayName,
		Body:         offerB,
		DelayedOffer: s.delayed,
		MaxForwards:  maxFwd,
	}, s.sink)
	if err != nil {
		return s.refuse(503, "Service Unavailable", "dialling "+target.String()+": "+err.Error())
	}
	s.b = b
	b.SetLogger(e.log.WithLazy(zap.String("session", s.id)))
	// The callee answers with the caller's payload types as a rule (RFC
	// 3264 §6.1): its digits are seen even before its SDP arrives.
	s.tapDtmf(b, s.fromA.TelephoneEvent)
	s.mu.Lock()
	s.snap.Callee.LegID = b.ID()
	s.snap.Callee.CallID = b.CallID()
	s.mu.Unlock()
	// From the base logger, not chained on s.log: one encoder clone per call
	// once it logs, not two.
	s.log = e.log.WithLazy(zap.String("session", s.id), zap.String("call_id", s.a.CallID()), zap.String("b_call_id", b.CallID()))
	s.log.Info("calling", zap.String("target", target.String()), zap.String("transport", transport))
	s.restartRingTimer()
	return true
}

// maxForwards is the inbound INVITE's Max-Forwards minus one (RFC 3261 16.6).
func maxForwards(inv *gosip.Request) uint32 {
	if mf := inv.MaxForwards(); mf != nil && mf.Val() > 0 {
		return mf.Val() - 1
	}
	return 70
}

func (s *Session) restartRingTimer() {
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	if s.e.cfg.RingTimeout > 0 {
		b := s.b
		s.ringTimer = time.AfterFunc(s.e.cfg.RingTimeout, func() { s.post(ringTimeout{leg: b}) })
	}
}

// refuse answers the caller with a failure before a B leg exists.
func (s *Session) refuse(status int, reason, why string) bool {
	s.log.Warn("call refused", zap.Int("status", status), zap.String("why", why))
	s.a.Respond(status, reason, nil, warning(why))
	s.end(Error, why)
	return false
}

func (s *Session) cleanup() {
	// No session stops without a final state and its event: whatever path
	// stopped the loop, a live state here is ended as ERROR (and its legs
	// hung up) before the session is recorded and retired.
	if st := s.state(); !st.Ended() {
		why := "the session stopped in " + string(st) + " without a final state"
		s.log.Error("session stopped while live; ending it", zap.String("state", string(st)))
		if s.a != nil {
			s.hangupAll(why)
		}
		s.transition(Error, why)
	}
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	for _, t := range s.timers {
		t.Stop()
	}
	s.cancel()
	s.wg.Wait()
	s.q.close()
	if t := s.transfer; t != nil && t.leg != nil {
		t.leg.SetSink(nil)
		t.leg.Bye("")
		if t.ep != nil {
			t.ep.Close()
		}
	}
	if t := s.transfer; t != nil && t.party != nil {
		s.endPartyRefer(t.party)
	}
	for _, l := range []*sip.Leg{s.a, s.b} {
		if l != nil {
			l.SetSink(nil)
		}
	}
	snap := s.Snapshot() // final counters, before the sockets go
	s.recordEnd()
	s.mu.Lock()
	ea, eb := s.ea, s.eb
	s.mu.Unlock()
	if ea != nil {
		ea.Close()
	}
	if eb != nil {
		eb.Close()
	}
	if s.e.cfg.Listen != nil {
		// After the endpoints closed: a listener starting now fails
		// instead of outliving the call.
		s.e.cfg.Listen.StopSession(s.id)
	}
	s.e.reg.retire(s, snap)
}

func (s *Session) handle(item any) {
	switch ev := item.(type) {
	case *sip.Progress:
		s.onProgress(ev)
	case *sip.Answered:
		s.onAnswered(ev)
	case *sip.Failed:
		s.onFailed(ev)
	case *sip.Cancelled:
		if s.b != nil {
			s.b.Cancel()
		}
		s.end(Cancelled, "caller cancelled")
	case *sip.Bye:
		s.onBye(ev)
	case *sip.Request:
		s.onRequest(ev)
	case *sip.Acked:
		s.onAcked(ev)
	case *sip.SessionExpired:
		// RFC 4028 10: a leg's session expired; the call ends on both.
		if ev.Leg == s.a || ev.Leg == s.b {
			why := "session timer expired on the caller's leg"
			if ev.Leg == s.b {
				why = "session timer expired on the callee's leg"
			}
			s.stopMusic()
			r := `SIP;cause=408;text="` + why + `"`
			s.a.Bye(r)
			if s.b != nil {
				s.b.Bye(r)
			}
			s.end(Error, why)
		}
	case *sip.AckTimeout:
		s.hangupAll("no ACK for 2xx")
		s.end(Error, "no ACK received for 2xx on leg "+ev.Leg.ID())
	case *sip.ReinviteResult:
		s.onReinviteResult(ev)
	case *sip.Result:
		if tag, ok := ev.Tag.(referTag); ok {
			s.onReferResult(ev, tag)
		} else if tag, ok := ev.Tag.(referNotify); ok {
			s.onReferNotifyResult(ev, tag)
		} else if _, ok := ev.Tag.(updateTag); ok {
			s.onUpdateResult(ev)
		}
	case *opRequest:
		s.beginOp(ev)
	case *joinRequest:
		s.onJoinRequest(ev)
	case *joinHandoff:
		s.onJoinHandoff(ev)
	case *joinRefused:
		s.onJoinRefused(ev)
	case retryInvite:
		s.tryReinvite(ev.leg)
	case transferTimeout:
		s.onTransferTimeout(ev)
	case transferGrace:
		s.onTransferGrace(ev)
	case dtmfDone:
		s.onDtmfDone(ev)
	case dtmfReceived:
		s.onDtmfReceived(ev)
	case ringTimeout:
		if ev.leg == s.b && !s.answered && !s.state().Ended() {
			s.b.Cancel()
			s.a.Respond(480, "Temporarily Unavailable", nil)
			s.end(NotAnswered, fmt.Sprintf("no answer within %s", s.e.cfg.RingTimeout))
		}
	case abortCmd:
		s.hangupAll(ev.reason)
		s.end(Aborted, ev.reason)
	}
}

// hangupAll ends every leg the way its state needs (RFC 3261 15): BYE when
// answered, CANCEL for a ringing outbound leg, and for an unanswered inbound
// one 487 (a client's hangup) or 503 (callctl stopping).
func (s *Session) hangupAll(reason string) {
	r := `SIP;cause=200;text="` + quotedText(reason) + `"`
	s.endRelay()
	s.stopMusic()
	if t := s.transfer; t != nil && t.leg != nil {
		t.leg.Bye(r)
	}
	if s.answered {
		s.a.Bye(r)
		s.b.Bye(r)
		return
	}
	if s.b != nil {
		s.b.CancelWithReason(r)
	}
	if strings.Contains(reason, "shutting down") {
		s.a.Respond(503, "Service Unavailable", nil, warning(reason), s.e.retryAfter())
		return
	}
	s.a.Respond(487, "Request Terminated", nil, gosip.NewHeader("Reason", r))
}

// quotedText makes s fit between the quotes of a header's quoted-string
// (RFC 3261 25.1): a reason may carry a party's number, which is the
// network's, so quotes and backslashes are escaped and control characters,
// CR and LF among them, dropped.
func quotedText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s))
}

// sdpFromCallee turns an SDP from the callee into the one the caller gets.
func (s *Session) sdpFromCallee(body []byte) ([]byte, error) {
	info, err := media.ParseSDP(body)
	if err != nil {
		return nil, err
	}
	if err := s.srtpFromCallee(info); err != nil {
		return nil, err
	}
	s.eb.SetRemote(info.Remote, info.RTCP)
	s.setFrom(s.b, info)
	s.setRawFrom(s.b, body)
	if !s.delayed {
		body = keepEvents(body, s.fromA, info) // an answer to the caller's offer
	}
	out, err := s.wa.Rewrite(body, s.ea.Advertise(), s.ea.Port())
	if err != nil {
		return nil, err
	}
	s.lastToA = out
	s.mapEvents() // the caller now sends with the types of out
	return out, nil
}

func (s *Session) onProgress(ev *sip.Progress) {
	if t := s.transfer; t != nil && ev.Leg == t.leg {
		s.transferProgress(fmt.Sprintf("target: %d %s", ev.Response.StatusCode, ev.Response.Reason), ev.Response.StatusCode)
		return
	}
	if ev.Leg != s.b || s.answered || s.state().Ended() {
		return
	}
	res := ev.Response
	s.noteAllow(res)
	var body []byte
	// With a delayed offer an unreliable provisional's SDP is no offer the
	// caller could answer (RFC 3261 13.2.1): it is not passed on.
	if len(res.Body()) > 0 && !s.delayed {
		// Early media (RFC 3960): relay it from now on.
		var err error
		if body, err = s.sdpFromCallee(res.Body()); err != nil {
			s.log.Warn("ignoring bad SDP in provisional response", zap.Error(err))
			body = nil
		} else {
			media.Connect(s.ea, s.eb)
		}
	}
	s.a.Respond(res.StatusCode, res.Reason, body)
	if s.state() == Setup || s.state() == Redirected {
		s.transition(Ringing, fmt.Sprintf("callee: %d %s", res.StatusCode, res.Reason))
	}
}

func (s *Session) onAnswered(ev *sip.Answered) {
	if t := s.transfer; t != nil && ev.Leg == t.leg {
		s.onFallbackAnswered(ev)
		return
	}
	if ev.Leg != s.b || s.state().Ended() {
		ev.Leg.Bye("")
		return
	}
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	s.noteAllow(ev.Response)
	body, err := s.sdpFromCallee(ev.Response.Body())
	if err != nil {
		s.log.Warn("callee answered with bad SDP", zap.Error(err))
		s.b.Bye(`SIP;cause=488;text="bad SDP"`)
		s.a.Respond(502, "Bad Gateway", nil, warning("callee's SDP: "+err.Error()))
		s.end(Error, "callee answered with bad SDP: "+err.Error())
		return
	}
	s.answered = true
	// Relay first: the callee may already be talking, and the caller starts
	// as soon as it sees the 200.
	s.mapEvents()
	media.Connect(s.ea, s.eb)
	s.a.Respond(200, "OK", body)
	// A delayed offer: body was the callee's offer; the caller's ACK
	// brings the answer, which onAcked passes on in the callee's ACK.
	s.transition(InCall, "callee answered")
}

// failureState maps the callee's final response to the session's end
// (DESIGN.md: 486 stays 486, 404 stays 404, no answer is 408/480).
func failureState(status int) State {
	switch status {
	case 486, 600:
		return Busy
	case 404, 604, 484, 410:
		return NotFound
	case 408, 480, 487:
		return NotAnswered
	}
	return Error
}

func (s *Session) onFailed(ev *sip.Failed) {
	if t := s.transfer; t != nil && ev.Leg == t.leg {
		s.onFallbackFailed(ev)
		return
	}
	if ev.Leg != s.b || s.state().Ended() {
		return
	}
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	status, reason := ev.Status, ""
	if ev.Response != nil {
		reason = ev.Response.Reason
	}
	var hdrs []gosip.Header
	switch {
	case status == 487:
		// Nobody here cancelled it; to the caller it was not answered.
		status, reason = 480, "Temporarily Unavailable"
	case ev.Response == nil && status == 408:
		reason = "Request Timeout"
	case ev.Response == nil:
		status, reason = 503, "Service Unavailable"
		hdrs = append(hdrs, s.e.retryAfter())
	}
	if ev.Response != nil {
		if ra := ev.Response.GetHeader("Retry-After"); ra != nil && len(hdrs) == 0 {
			hdrs = append(hdrs, gosip.HeaderClone(ra))
		}
	}
	why := fmt.Sprintf("callee: %d %s", ev.Status, reason)
	if ev.Err != nil {
		why += ": " + ev.Err.Error()
	}
	s.a.Respond(status, reason, nil, hdrs...)
	s.end(failureState(ev.Status), why)
}

// onBye ends the call when a party hangs up. The other party's BYE carries
// the Reason the party gave, when well-formed (RFC 3326), else callctl's.
func (s *Session) onBye(ev *sip.Bye) {
	// RFC 3261 15.1.2: requests still pending in the call are answered,
	// 487 recommended; a party's re-INVITE waiting for the other party's
	// answer is one.
	s.endRelay()
	r := `SIP;cause=200;text="peer hung up"`
	if carried := carriedReason(ev.Request); carried != "" {
		r = carried
	}
	if t := s.transfer; t != nil {
		if t.party != nil && ev.Leg == t.transferor {
			s.referrerLeft(t)
			return
		}
		if t.completed {
			// The transferee's side ended the old dialog, as RFC 5589
			// expects after a successful transfer.
			s.finished = true
			return
		}
		if ev.Leg == t.leg {
			s.onFallbackFailed(&sip.Failed{Leg: ev.Leg, Status: 480})
			return
		}
		if ev.Leg == t.transferee && t.leg == nil {
			switch s.state() {
			case Transferring:
				// It accepted REFER (its 202 or a NOTIFY said so) and left
				// the old call before its final NOTIFY was handled: the
				// NOTIFY can no longer reach this dialog, and a transferee
				// leaves once it has the target (RFC 5589 6).
				t.transfereeLeft = true
				s.completeTransfer("the " + s.partyName(t.transferee) + " accepted REFER and left the call before its final NOTIFY")
				return
			case TransferRequested:
				// Its answer to REFER is still on the way; it decides.
				t.transfereeLeft = true
				return
			}
		}
	}
	if ev.Leg != s.a && ev.Leg != s.b {
		return
	}
	if ev.Leg == s.a {
		if s.answered {
			s.b.Bye(r)
		} else if s.b != nil {
			s.b.Cancel()
		}
		s.end(CallerHungUp, "caller sent BYE")
		return
	}
	s.a.Bye(r)
	s.end(CalleeHungUp, "callee sent BYE")
}

// endRelay answers a party's re-INVITE still waiting for the other party's
// answer with 487 Request Terminated (RFC 3261 15.1.2, 9.2), as the call
// ends: it must not wait 32 s for an answer that will never come.
func (s *Session) endRelay() {
	if r := s.relay; r != nil {
		s.relay = nil
		r.req.Respond(487, "Request Terminated", nil)
	}
}

func (s *Session) other(l *sip.Leg) *sip.Leg {
	if l == s.a {
		return s.b
	}
	return s.a
}

func (s *Session) endpoint(l *sip.Leg) *media.Endpoint {
	if l == s.a {
		return s.ea
	}
	return s.eb
}

func (s *Session) writer(l *sip.Leg) *media.SDPWriter {
	if l == s.a {
		return s.wa
	}
	return s.wb
}
