package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/dtmf"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// The operations of the seed's Session class, one method each. Every one
// checks its arguments first (nothing goes on the wire for a bad one), then
// runs on the session's goroutine, one operation at a time per session: a
// second operation waits for the first to finish. An operation that fails
// leaves the call as it was.

var (
	holdStates     = []State{InCall, CallerOnHold, CalleeOnHold}
	unholdStates   = []State{OnHold}
	transferStates = []State{InCall, CallerOnHold, CalleeOnHold, OnHold}
	forwardStates  = []State{Setup, Ringing, InCall, CallerOnHold, CalleeOnHold, OnHold}
	dtmfStates     = []State{InCall, CallerOnHold, CalleeOnHold, OnHold}
)

// maxDtmfKeys bounds one sendDtmf: a longer string would hold the call's
// operations for minutes.
const maxDtmfKeys = 64

// opRequest is an operation waiting for, or running on, a session.
type opRequest struct {
	name  string
	args  map[string]string
	start func(s *Session) // begins the op; it ends with s.finishOp
	reply chan error
	// endedOK marks hangup and close: harmless no-ops on an ended session,
	// and never queued behind another operation.
	endedOK bool
	// here keeps the op on this node: one the owner runs for another node
	// (listen-in) is not forwarded a second time, so two nodes that
	// disagree about the owner cannot pass it back and forth.
	here bool
}

// activeOp is the operation a session is running.
type activeOp struct {
	req     *opRequest
	pending map[*sip.Leg]bool // re-INVITEs sent for the op, by leg
	results map[*sip.Leg]int  // their final statuses
	reasons map[*sip.Leg]string
	offers  map[*sip.Leg][]byte
	target  State // hold: ON_HOLD, unhold: IN_CALL
}

// Hold puts both parties on hold (re-INVITE with a=sendonly, or inactive by
// config) and plays music on hold to each; ON_HOLD once both accepted.
func (e *Engine) Hold(ctx context.Context, id string) error {
	return e.run(ctx, id, &opRequest{name: "hold", start: func(s *Session) { s.startHold() }})
}

// Unhold resumes both parties (re-INVITE with a=sendrecv) → IN_CALL.
func (e *Engine) Unhold(ctx context.Context, id string) error {
	return e.run(ctx, id, &opRequest{name: "unhold", start: func(s *Session) { s.startUnhold() }})
}

// Hangup ends the call: BYE to answered legs, CANCEL to a ringing outbound
// leg, 487 to a ringing inbound one → HUNG_UP; the session stays readable.
// On an ended session it does nothing.
func (e *Engine) Hangup(ctx context.Context, id string) error {
	return e.run(ctx, id, &opRequest{name: "hangup", endedOK: true, start: func(s *Session) {
		s.hangupAll("hung up by callctl client")
		s.end(HungUp, "hung up by a client")
		s.finishOp(nil)
	}})
}

// CloseWithHangup hangs up and then releases the session at once → CLOSED.
func (e *Engine) CloseWithHangup(ctx context.Context, id string) error {
	return e.run(ctx, id, &opRequest{name: "closeWithHangup", endedOK: true, start: func(s *Session) {
		s.hangupAll("hung up by callctl client")
		if s.transition(HungUp, "hung up by a client") {
			s.end(Closed, "closed by a client")
		}
		s.finishOp(nil)
	}})
}

// Close releases the session at once from any state: media stopped,
// listeners dropped, legs ended without waiting for answers → CLOSED.
func (e *Engine) Close(ctx context.Context, id string) error {
	err := e.run(ctx, id, &opRequest{name: "close", endedOK: true, start: func(s *Session) {
		s.hangupAll("closed by callctl client")
		s.end(Closed, "closed by a client")
		s.finishOp(nil)
	}})
	if err == nil {
		e.reg.forget(id)
	}
	return err
}

// BlindTransfer hands the call of the transferor's peer (the transferee) to
// target with REFER (RFC 3515), or, when the transferee refuses REFER and the
// config allows, by connecting target itself.
func (e *Engine) BlindTransfer(ctx context.Context, id, transferor, target string) error {
	snap, err := e.lookup(id)
	if err != nil {
		return err
	}
	if transferor == "" || (transferor != snap.Caller.Number && transferor != snap.Callee.Number) {
		return invalidArg("blindTransfer", "transferor", fmt.Sprintf("transferor %q is neither party of the call", transferor),
			snap.Caller.Number, snap.Callee.Number)
	}
	t, oe := e.checkTarget("blindTransfer", "target", target)
	if oe != nil {
		return oe
	}
	target = t.Raw
	return e.run(ctx, id, &opRequest{name: "blindTransfer", args: map[string]string{"transferor": transferor, "target": target},
		start: func(s *Session) { s.startTransfer(transferor, target) }})
}

// Forward sends a ringing call to target instead (CANCEL the ringing leg,
// ring target: REDIRECTED), or transfers an answered call as
// BlindTransfer(callee, target).
func (e *Engine) Forward(ctx context.Context, id, target string) error {
	if _, err := e.lookup(id); err != nil {
		return err
	}
	t, oe := e.checkTarget("forward", "target", target)
	if oe != nil {
		return oe
	}
	target = t.Raw
	return e.run(ctx, id, &opRequest{name: "forward", args: map[string]string{"target": target},
		start: func(s *Session) { s.startForward(target) }})
}

// SendDtmf sends keys (one or more of 0-9 * # A-D) to party (the caller's or
// the callee's number): RFC 4733 events in the RTP toward it, or SIP INFO
// application/dtmf-relay when its leg negotiated no telephone-event.
func (e *Engine) SendDtmf(ctx context.Context, id, keys, party string) error {
	snap, err := e.lookup(id)
	if err != nil {
		return err
	}
	parsed, err := dtmf.ParseKeys(keys)
	if err != nil {
		return invalidArg("sendDtmf", "key", err.Error(), "0-9", "*", "#", "A-D")
	}
	if len(parsed) > maxDtmfKeys {
		return invalidArg("sendDtmf", "key", fmt.Sprintf("%d keys; at most %d in one request", len(parsed), maxDtmfKeys))
	}
	if party == "" || (party != snap.Caller.Number && party != snap.Callee.Number) {
		return invalidArg("sendDtmf", "party", fmt.Sprintf("party %q is neither party of the call", party),
			snap.Caller.Number, snap.Callee.Number)
	}
	return e.run(ctx, id, &opRequest{name: "sendDtmf", args: map[string]string{"key": keys, "party": party},
		start: func(s *Session) { s.startDtmf(parsed, party) }})
}

// lookup finds a session for argument checks (live or retained).
func (e *Engine) lookup(id string) (Snapshot, error) {
	snap, ok := e.reg.GetAny(id)
	if !ok {
		return Snapshot{}, &OpError{Code: CodeNotFound, Msg: fmt.Sprintf("no session %q", id)}
	}
	return snap, nil
}

// run posts op to the session and waits for its outcome or ctx.
func (e *Engine) run(ctx context.Context, id string, op *opRequest) error {
	op.reply = make(chan error, 1)
	s := e.reg.liveSession(id)
	if s == nil && !op.here {
		if node, ok := e.remoteOwner(id); ok {
			_, err := e.cfg.Forwarder.Forward(ctx, node, ForwardedOp{Name: op.name, ID: id, Args: op.args})
			return err
		}
	}
	if s == nil || !s.q.push(op) {
		return e.onEnded(id, op)
	}
	select {
	case err := <-op.reply:
		return err
	case <-ctx.Done():
		return timeout(op.name, "gave up waiting for the outcome: "+ctx.Err().Error())
	}
}

// onEnded answers an operation on a session that is no longer live.
func (e *Engine) onEnded(id string, op *opRequest) error {
	snap, ok := e.reg.Get(id)
	if !ok {
		if op.endedOK && e.reg.wasClosed(id) {
			return nil
		}
		return &OpError{Code: CodeNotFound, Op: op.name, Msg: fmt.Sprintf("no session %q", id)}
	}
	if op.endedOK {
		return nil
	}
	return wrongState(op.name, snap.State, allowedFor(op.name))
}

func allowedFor(op string) []State {
	switch op {
	case "hold":
		return holdStates
	case "unhold":
		return unholdStates
	case "blindTransfer":
		return transferStates
	case "forward":
		return forwardStates
	case "sendDtmf":
		return dtmfStates
	}
	return nil
}

// beginOp starts an op now or queues it behind the running one.
func (s *Session) beginOp(op *opRequest) {
	if s.op != nil && op.endedOK {
		// Hanging up or closing does not wait behind a transfer or a hold
		// in progress: that one is abandoned.
		queued := s.opQueue
		s.opQueue = nil
		s.finishOp(&OpError{Code: CodeWrongState, Op: s.op.req.name, State: s.state(), AllowedStates: allowedFor(s.op.req.name),
			Msg: "interrupted by " + op.name})
		s.opQueue = queued
	}
	if s.op != nil {
		s.opQueue = append(s.opQueue, op)
		return
	}
	if s.state().Ended() && !op.endedOK {
		op.reply <- wrongState(op.name, s.state(), allowedFor(op.name))
		return
	}
	s.op = &activeOp{req: op, pending: map[*sip.Leg]bool{}, results: map[*sip.Leg]int{},
		reasons: map[*sip.Leg]string{}, offers: map[*sip.Leg][]byte{}}
	op.start(s)
}

// finishOp ends the running op, reports it, and starts the next one.
func (s *Session) finishOp(err error) {
	op := s.op
	if op == nil {
		return
	}
	s.op = nil
	result, msg := "ok", ""
	if err != nil {
		result, msg = "error", err.Error()
	}
	s.opsApplied = append(s.opsApplied, op.req.name+" "+result)
	if s.finished {
		s.recordEnd() // before the caller hears the outcome
	}
	op.req.reply <- err
	s.publishOp(op.req.name, op.req.args, result, msg)
	if len(s.opQueue) > 0 && !s.finished {
		next := s.opQueue[0]
		s.opQueue = s.opQueue[1:]
		s.beginOp(next)
	}
}

// failQueuedOps answers every op still waiting when the session ends.
func (s *Session) failQueuedOps() {
	if s.op != nil {
		name := s.op.req.name
		s.finishOp(&OpError{Code: CodeWrongState, Op: name, State: s.state(), AllowedStates: allowedFor(name),
			Msg: "the session ended before the operation completed (" + s.snap.EndReason + ")"})
	}
	for _, op := range s.opQueue {
		if op.endedOK {
			op.reply <- nil
		} else {
			op.reply <- wrongState(op.name, s.state(), allowedFor(op.name))
		}
	}
	s.opQueue = nil
}

// requireState refuses the running op unless the session is in one of states.
func (s *Session) requireState(states []State) bool {
	if cur := s.state(); !slices.Contains(states, cur) {
		s.finishOp(wrongState(s.op.req.name, cur, states))
		return false
	}
	return true
}

func (s *Session) partyName(l *sip.Leg) string {
	if l == s.a {
		return "caller " + s.snap.Caller.Number
	}
	return "callee " + s.snap.Callee.Number
}

// offerWithDirection is callctl's next offer to a party: what it last sent
// it, with the audio direction replaced (RFC 3264 8.4 for hold).
func (s *Session) offerWithDirection(l *sip.Leg, d media.Direction) ([]byte, error) {
	last := s.lastToA
	if l == s.b {
		last = s.lastToB
	}
	body, err := media.SetDirection(last, d)
	if err != nil {
		return nil, err
	}
	return s.writer(l).Rewrite(body, s.endpoint(l).Advertise(), s.endpoint(l).Port())
}

func (s *Session) startHold() {
	if !s.requireState(holdStates) {
		return
	}
	dir := media.SendOnly
	if s.e.cfg.HoldInactive {
		dir = media.Inactive
	}
	s.op.target = OnHold
	s.reinviteBoth(dir)
}

func (s *Session) startUnhold() {
	if !s.requireState(unholdStates) {
		return
	}
	s.op.target = InCall
	s.reinviteBoth(media.SendRecv)
}

// reinviteBoth sends the op's re-INVITE with direction d to both parties.
func (s *Session) reinviteBoth(d media.Direction) {
	for _, l := range []*sip.Leg{s.a, s.b} {
		offer, err := s.offerWithDirection(l, d)
		if err != nil {
			s.finishOp(&OpError{Code: CodeInvalidArgument, Op: s.op.req.name, Msg: "cannot build the offer: " + err.Error()})
			return
		}
		s.op.offers[l] = offer
	}
	for _, l := range []*sip.Leg{s.a, s.b} {
		s.op.pending[l] = true
		s.sendReinvite(l, s.op.offers[l], inviteForOp)
	}
}

// onOpReinvite takes one party's answer to the op's re-INVITE.
func (s *Session) onOpReinvite(ev *sip.ReinviteResult) {
	op := s.op
	if op == nil || !op.pending[ev.Leg] {
		return
	}
	delete(op.pending, ev.Leg)
	op.results[ev.Leg] = ev.Status
	op.reasons[ev.Leg] = reasonOf(ev.Response, ev.Status)
	if ev.Status >= 200 && ev.Status < 300 {
		s.takeAnswer(ev.Leg, ev.Response.Body())
		s.setLastTo(ev.Leg, op.offers[ev.Leg])
	}
	if len(op.pending) > 0 {
		return
	}
	// Both answered.
	var refused []*sip.Leg
	for _, l := range []*sip.Leg{s.a, s.b} {
		if st := op.results[l]; st < 200 || st >= 300 {
			refused = append(refused, l)
		}
	}
	if len(refused) == 0 {
		if op.target == OnHold {
			s.startMusic()
			s.transition(OnHold, "held by a client")
		} else {
			s.stopMusic()
			media.Connect(s.ea, s.eb)
			s.holdA, s.holdB = false, false
			s.transition(InCall, "resumed by a client")
		}
		s.finishOp(nil)
		return
	}
	// Undo for the party that accepted, so nothing changed (docs/design.md).
	undo := media.SendRecv
	if op.target == InCall {
		undo = media.SendOnly
		if s.e.cfg.HoldInactive {
			undo = media.Inactive
		}
	}
	for _, l := range []*sip.Leg{s.a, s.b} {
		if !slices.Contains(refused, l) {
			if body, err := s.offerWithDirection(l, undo); err == nil {
				s.sendReinvite(l, body, inviteRollback)
			}
		}
	}
	l := refused[0]
	if op.results[l] == 408 {
		s.finishOp(timeout(op.req.name, "the "+s.partyName(l)+" did not answer the re-INVITE"))
		return
	}
	s.finishOp(peerRefused(op.req.name, s.partyName(l), op.results[l], op.reasons[l]))
}

func reasonOf(res *gosip.Response, status int) string {
	if res != nil {
		return res.Reason
	}
	if status == 408 {
		return "Request Timeout"
	}
	return ""
}

// takeAnswer applies a party's SDP answer to its endpoint.
func (s *Session) takeAnswer(l *sip.Leg, body []byte) {
	info, err := media.ParseSDP(body)
	if err != nil {
		s.log.Warn("unusable SDP answer", zap.String("leg", l.ID()), zap.Error(err))
		return
	}
	s.setFrom(l, info)
	if info.Direction != media.Inactive {
		s.endpoint(l).SetRemote(info.Remote, info.RTCP)
	}
}

func (s *Session) setLastTo(l *sip.Leg, body []byte) {
	if l == s.a {
		s.lastToA = body
	} else {
		s.lastToB = body
	}
}

// startMusic plays music on hold to each party in a codec it accepted.
func (s *Session) startMusic() {
	for _, l := range []*sip.Leg{s.a, s.b} {
		info := s.fromA
		if l == s.b {
			info = s.fromB
		}
		pt, codec, ok := g711(info)
		if !ok {
			s.log.Info("no G.711 codec toward this party: holding without music", zap.String("leg", l.ID()))
			s.endpoint(l).Disconnect()
			s.endpoint(s.other(l)).Disconnect()
			continue
		}
		if err := s.endpoint(l).StartMusic(s.e.music, pt, codec); err != nil {
			s.log.Warn("music on hold failed", zap.Error(err))
		}
	}
}

func (s *Session) stopMusic() {
	for _, ep := range []*media.Endpoint{s.ea, s.eb} {
		if ep != nil {
			ep.StopMusic()
		}
	}
}

// g711 picks the first PCMU or PCMA codec of a party's SDP.
func g711(info media.MediaInfo) (uint8, string, bool) {
	for _, c := range info.Codecs {
		switch strings.ToUpper(c.Name) {
		case "PCMU", "PCMA":
			return c.PayloadType, strings.ToUpper(c.Name), true
		}
	}
	return 0, "", false
}

// inviteKind says why callctl sent a re-INVITE.
type inviteKind int

const (
	inviteRelay    inviteKind = iota // a party's re-INVITE relayed to the other
	inviteForOp                      // hold/unhold
	inviteRollback                   // undoing half of a failed op
	inviteRecover                    // moving a re-adopted call onto this process's relay (recover.go)
)

// outInvite is a re-INVITE callctl has sent or will retry.
type outInvite struct {
	body     []byte
	kind     inviteKind
	attempts int
}

type retryInvite struct{ leg *sip.Leg }

// sendReinvite sends a re-INVITE, retrying on glare after the RFC 3261
// 14.1 delay: 2.1-4 s if callctl chose the dialog's Call-ID, else 0-2 s.
func (s *Session) sendReinvite(l *sip.Leg, body []byte, kind inviteKind) {
	s.inviting[l] = &outInvite{body: body, kind: kind}
	s.tryReinvite(l)
}

func (s *Session) tryReinvite(l *sip.Leg) {
	oi := s.inviting[l]
	if oi == nil {
		return
	}
	oi.attempts++
	err := l.Reinvite(oi.body)
	if err == nil {
		return
	}
	if sip.IsGlare(err) && oi.attempts < 5 {
		s.retryLater(l)
		return
	}
	delete(s.inviting, l)
	s.inviteDone(&sip.ReinviteResult{Leg: l, Status: 500, Err: err}, oi)
}

func (s *Session) retryLater(l *sip.Leg) {
	var d time.Duration
	if l.Outbound() {
		d = 2100*time.Millisecond + time.Duration(rand.IntN(190))*10*time.Millisecond
	} else {
		d = time.Duration(rand.IntN(200)) * 10 * time.Millisecond
	}
	s.after(d, retryInvite{leg: l})
}

// after posts v to the session after d.
func (s *Session) after(d time.Duration, v any) {
	t := time.AfterFunc(d, func() { s.q.push(v) })
	s.timers = append(s.timers, t)
}

// onReinviteResult routes the outcome of a re-INVITE callctl sent.
func (s *Session) onReinviteResult(ev *sip.ReinviteResult) {
	oi := s.inviting[ev.Leg]
	if oi == nil {
		return
	}
	if ev.Status == 491 && oi.attempts < 5 {
		s.retryLater(ev.Leg) // RFC 3261 14.1
		return
	}
	delete(s.inviting, ev.Leg)
	s.inviteDone(ev, oi)
}

func (s *Session) inviteDone(ev *sip.ReinviteResult, oi *outInvite) {
	switch oi.kind {
	case inviteRelay:
		s.onRelayResult(ev)
	case inviteForOp:
		s.onOpReinvite(ev)
	case inviteRecover:
		s.onRecoverReinvite(ev)
	case inviteRollback:
		if ev.Status >= 200 && ev.Status < 300 {
			s.takeAnswer(ev.Leg, ev.Response.Body())
			s.setLastTo(ev.Leg, oi.body)
		}
	}
}
