package session

import (
	"context"
	"fmt"
	"slices"
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

	// routing is the routes in force when the call came in: its own B
	// leg goes by them whatever a reload does meanwhile.
	routing *routing

	// Owned by the run goroutine.
	a, b       *sip.Leg
	offer      media.MediaInfo
	offerSDP   *media.ParsedSDP // the caller's offer as read, for its first rewrite; nil for none
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

	op            *activeOp
	opQueue       []*opRequest
	inviting      map[*sip.Leg]*outInvite
	tapped        map[*sip.Leg]int       // the payload type each leg's DTMF tap watches (tapDtmf)
	dtmfLines     map[*sip.Leg]*dtmfLine // digits on their way to each party (dtmfline.go)
	sentEvents    [2]sentEventType       // the telephone-event type in the SDP callctl last sent each party (eventsSent)
	timers        []*time.Timer
	transfer      *transfer
	transferGen   int
	join          joinHandover    // a party handed between this call and another (join.go)
	leftover      []any           // queued items not handled once the session finished
	opsApplied    []string        // "hold ok", … for the call record
	ctx           context.Context // cancelled when the session ends
	cancel        context.CancelFunc
	wg            sync.WaitGroup // goroutines the session started (DTMF senders)
	written       recordMark     // what the last record written held (record.go)
	kept          bool           // a record of the session is in the store
	recovered     *record        // the record this session was re-adopted from (recover.go)
	recovering    int            // re-adopting: parties yet to answer the re-INVITE
	recoverFailed string         // why re-adopting failed, once a party refused
	handedTo      string         // the node the call went to (handoff.go)

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

func newSession(e *Engine, in *sip.Leg, offer media.MediaInfo, offerSDP *media.ParsedSDP) *Session {
	req := in.Invite()
	s := &Session{id: newID(), e: e, a: in, offer: offer, offerSDP: offerSDP, q: newInbox(), inviting: map[*sip.Leg]*outInvite{}, tapped: map[*sip.Leg]int{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routing = e.routing.Load()
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

func (s *Session) run() { s.serve(s.start) }

// serve runs the session: start (placing the call, or re-adopting it),
// then its events until it ends.
func (s *Session) serve(start func() bool) {
	defer s.cleanup()
	if !start() {
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
			items := s.q.take()
			for i, item := range items {
				s.handle(item)
				if s.finished {
					s.leftover = items[i+1:]
					break
				}
			}
			s.persist()
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
		if offerB, err = s.rewriteOffer(eb); err != nil {
			return s.refuse(488, "Not Acceptable Here", "rewriting offer: "+err.Error())
		}
		s.lastToB = offerB
	}
	target, transport, err := e.targetBy(s.routing, s.snap.Dialled)
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
	if s.handedTo != "" {
		s.cleanupHandedOff()
		return
	}
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
	// What came after the end: a party handed to another call (join.go)
	// has its events passed on, requests are answered 481.
	for _, item := range append(s.leftover, s.q.take()...) {
		if ev, ok := item.(sip.Event); ok && s.join.gone != nil && sip.LegOf(ev) == s.join.gone {
			s.join.to.sink(ev)
			continue
		}
		refuseLate(item)
	}
	s.leftover = nil
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
	s.unpersist()
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
	if ev, ok := item.(sip.Event); ok && s.joinEvent(ev) {
		return
	}
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
	case releaseCmd:
		s.onRelease(ev)
	case abortCmd:
		s.hangupAll(ev.reason)
		s.end(Aborted, ev.reason)
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

// rewriteOffer is the caller's offer as the callee gets it: the parse
// HandleInvite made, used once (the INVITE's body cannot change).
func (s *Session) rewriteOffer(eb *media.Endpoint) ([]byte, error) {
	p := s.offerSDP
	s.offerSDP = nil
	body := s.a.Invite().Body()
	if p == nil || !sameBytes(p.Body(), body) {
		return s.wb.Rewrite(body, eb.Advertise(), eb.Port())
	}
	return s.wb.RewriteParsed(p, eb.Advertise(), eb.Port())
}

// sameBytes reports whether a and b are the same slice (one backing array,
// one length), not merely equal.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (s *Session) writer(l *sip.Leg) *media.SDPWriter {
	if l == s.a {
		return s.wa
	}
	return s.wb
}
