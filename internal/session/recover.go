package session

import (
	"context"
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// RecordEntry is one call record as read back from the store.
type RecordEntry struct {
	Key      string
	Value    []byte
	Revision uint64
}

// RecoverResult counts what Recover did.
type RecoverResult struct {
	Adopted int // sessions running again, re-INVITEs on their way
	Ended   int // records whose call could not go on: ended cleanly
	Skipped int // other nodes' records
}

// Recover re-adopts the calls of this node's records, read back from the
// store at start after the process that carried them died (docs/design.md,
// "State that outlives the process"). Each becomes a live session again,
// with its id and state; its goroutine re-INVITEs both parties onto
// relay ports of this process (higher CSeq, this process's Contact,
// RFC 3261 14.1), and clients get RECOVERED once both answered. A call
// that cannot go on is ended cleanly: BYE to whatever leg can be reached,
// and a call record with the reason. Call it before the SIP agent serves,
// so the parties' in-dialog requests already find their legs, and the
// start it returns once it serves: the sessions begin then.
func (e *Engine) Recover(entries []RecordEntry) (start func()) {
	var res RecoverResult
	var ready []*Session
	for _, en := range entries {
		r, err := decodeRecord(en.Key, en.Value)
		if e.reg.liveSession(en.Key) != nil {
			continue // already running here
		}
		if r != nil && r.Node != e.cfg.Node {
			res.Skipped++
			continue
		}
		if k := e.cfg.Keeper; k != nil {
			k.Adopt(en.Key, en.Revision)
		}
		if err != nil {
			e.log.Error("call record not re-adopted", zap.String("session", en.Key), zap.Error(err))
			e.abandon(en.Key, r, err.Error())
			res.Ended++
			continue
		}
		s, err := newRecoveredSession(e, r)
		if err != nil {
			e.log.Error("call not re-adopted", zap.String("session", r.ID), zap.Error(err))
			e.abandon(en.Key, r, err.Error())
			res.Ended++
			continue
		}
		ready = append(ready, s)
		res.Adopted++
	}
	if res.Adopted+res.Ended > 0 {
		e.log.Info("re-adopting calls from the store", zap.Int("calls", res.Adopted), zap.Int("ended", res.Ended), zap.Int("other_nodes", res.Skipped))
	}
	e.recovered.Add(uint64(res.Adopted))
	return func() {
		for _, s := range ready {
			release := e.admission.adopt()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer release()
				s.serve(s.readopt)
			}()
		}
	}
}

// Recovered is the number of calls re-adopted from the store since start.
func (e *Engine) Recovered() uint64 { return e.recovered.Load() }

// abandon ends a recorded call that cannot be re-adopted: a BYE on each
// leg whose dialog state is usable (no party is left talking to nobody),
// a call record, and the record removed.
func (e *Engine) abandon(key string, r *record, why string) {
	why = "not re-adopted: " + why
	if r != nil {
		bye := fmt.Sprintf(`SIP;cause=500;text="%s"`, quotedText(why))
		for i, d := range r.Legs {
			if l, err := e.agent.Restore(d, []byte(r.From[i]), nil); err == nil {
				l.Bye(bye)
			}
		}
		if e.cfg.OnEnd != nil && r.ID == key {
			now := time.Now()
			e.cfg.OnEnd(Snapshot{ID: r.ID, State: Error, Caller: r.Caller, Callee: r.Callee, Dialled: r.Dialled,
				Start: r.Start, Answer: r.Answer, End: now, StateSince: now, EndReason: why}, r.Ops)
		}
	}
	if k := e.cfg.Keeper; k != nil {
		k.Remove(key)
	}
}

// newRecoveredSession rebuilds a session from its record: both legs'
// dialogs registered with the agent, the SDP each party last sent and was
// sent, the state. The relay and the re-INVITEs come with readopt.
func newRecoveredSession(e *Engine, r *record) (*Session, error) {
	if r.SRTP {
		return nil, fmt.Errorf("its media is SRTP, whose keys are not kept")
	}
	var info [2]media.MediaInfo
	for i, body := range r.From {
		var err error
		if info[i], err = media.ParseSDP([]byte(body)); err != nil {
			return nil, fmt.Errorf("the %s's SDP: %w", roles[i], err)
		}
	}
	s := &Session{id: r.ID, e: e, q: newInbox(), inviting: map[*sip.Leg]*outInvite{}, tapped: map[*sip.Leg]int{},
		answered: true, recovered: r, kept: true}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var legs [2]*sip.Leg
	for i, d := range r.Legs {
		l, err := e.agent.Restore(d, []byte(r.From[i]), s.sink)
		if err != nil {
			for _, done := range legs[:i] {
				done.Close()
			}
			return nil, fmt.Errorf("the %s's dialog: %w", roles[i], err)
		}
		l.SetLogger(e.log.WithLazy(zap.String("session", s.id)))
		legs[i] = l
	}
	s.a, s.b = legs[0], legs[1]
	s.log = e.log.WithLazy(zap.String("session", s.id), zap.String("call_id", s.a.CallID()), zap.String("b_call_id", s.b.CallID()))
	s.offer, s.fromA, s.fromB = info[0], info[0], info[1]
	s.rawFromA, s.rawFromB = []byte(r.From[0]), []byte(r.From[1])
	s.lastToA, s.lastToB = []byte(r.To[0]), []byte(r.To[1])
	s.wa = media.RestoreSDPWriter("callctl", r.Origins[0], s.lastToA)
	s.wb = media.RestoreSDPWriter("callctl", r.Origins[1], s.lastToB)
	s.holdA, s.holdB = r.Hold[0], r.Hold[1]
	s.allowB, s.opsApplied = r.AllowB, r.Ops
	state := r.State
	if state == TransferFailed {
		state = InCall // the failed transfer's news went with the process
	}
	caller, callee := r.Caller, r.Callee
	caller.LegID, caller.CallID = s.a.ID(), s.a.CallID()
	callee.LegID, callee.CallID = s.b.ID(), s.b.CallID()
	s.snap = Snapshot{ID: r.ID, State: state, Caller: caller, Callee: callee, Dialled: r.Dialled,
		Start: r.Start, Answer: r.Answer, StateSince: r.StateSince}
	e.reg.add(s)
	return s, nil
}

// roles names the legs in messages, caller first.
var roles = [2]string{"caller", "callee"}

// readopt is a recovered session's start: relay ports of this process,
// then a re-INVITE to each party offering them, with what callctl last
// offered or answered it (RFC 3264 8: same o= session, a higher version).
func (s *Session) readopt() bool {
	epCfg := s.e.endpointConfig(s.log)
	ea, err := s.allocateAgain(epCfg, s.recovered.Ports[0])
	if err != nil {
		s.hangupAll("no RTP ports to re-adopt the call")
		s.end(Error, "not re-adopted: no RTP ports: "+err.Error())
		return false
	}
	eb, err := s.allocateAgain(epCfg, s.recovered.Ports[1])
	if err != nil {
		ea.Close()
		s.hangupAll("no RTP ports to re-adopt the call")
		s.end(Error, "not re-adopted: no RTP ports: "+err.Error())
		return false
	}
	s.mu.Lock()
	s.ea, s.eb = ea, eb
	s.mu.Unlock()
	// Each party may already send to the new port once it has the
	// re-INVITE; the relay runs from now on, toward what each last said.
	for _, l := range []*sip.Leg{s.a, s.b} {
		if info := s.fromOf(l); info.Direction != media.Inactive {
			s.endpoint(l).SetRemote(info.Remote, info.RTCP)
		}
	}
	s.mapEvents()
	media.Connect(s.ea, s.eb)
	for _, l := range []*sip.Leg{s.a, s.b} {
		offer, err := s.writer(l).Rewrite(s.lastTo(l), s.endpoint(l).Advertise(), s.endpoint(l).Port())
		if err != nil {
			s.hangupAll("the call could not be re-adopted")
			s.end(Error, "not re-adopted: rewriting the offer to the "+s.role(l)+": "+err.Error())
			return false
		}
		s.setLastTo(l, offer)
		s.recovering++
		s.sendReinvite(l, offer, inviteRecover)
	}
	s.log.Info("re-adopting the call", zap.String("state", string(s.state())))
	return true
}

// allocateAgain takes the relay port the call had (restarted on the same
// host, it is free: a party that still sends there reaches this call, not
// another one that happened to get the port), else any.
func (s *Session) allocateAgain(cfg media.EndpointConfig, port int) (*media.Endpoint, error) {
	if port > 0 {
		if ep, err := s.e.ports.AllocateAt(cfg, port); err == nil {
			return ep, nil
		}
	}
	return s.e.ports.Allocate(cfg)
}

// onRecoverReinvite is a party's answer to readopt's re-INVITE. Once both
// answered, the call goes on, or, if either refused, ends: BYE to the
// party that took its re-INVITE (not before its answer, so the BYE never
// crosses it), none to one that answered 481 (its dialog is gone).
func (s *Session) onRecoverReinvite(ev *sip.ReinviteResult) {
	if s.state().Ended() {
		return
	}
	if ev.Status < 200 || ev.Status >= 300 {
		// RFC 3261 14.1: a failed re-INVITE leaves the session as it was,
		// but here "as it was" is the dead process's relay: the call ends.
		why := fmt.Sprintf("not re-adopted: the %s answered the re-INVITE %d", s.role(ev.Leg), ev.Status)
		if ev.Err != nil && ev.Response == nil {
			why = fmt.Sprintf("not re-adopted: the %s did not answer the re-INVITE", s.role(ev.Leg))
		}
		if s.recoverFailed == "" {
			s.recoverFailed = why
		}
		if ev.Status == 481 {
			ev.Leg.Close()
		}
	} else if body := ev.Response.Body(); len(body) > 0 {
		s.takeAnswer(ev.Leg, body)
		s.setRawFrom(ev.Leg, body)
	}
	if s.recovering--; s.recovering > 0 {
		return
	}
	if why := s.recoverFailed; why != "" {
		s.log.Warn("call not re-adopted", zap.String("why", why))
		s.hangupAll(why)
		s.end(Error, why)
		return
	}
	if s.state() == OnHold {
		s.startMusic()
	}
	snap := s.Snapshot()
	s.log.Info("call re-adopted", zap.String("state", string(snap.State)))
	s.e.reg.publish(Event{Type: EventRecovered, SessionID: s.id, State: snap.State, Reason: "re-adopted from the live-call store",
		Time: time.Now(), Session: snap})
}

// lastTo is the SDP callctl last sent party l.
func (s *Session) lastTo(l *sip.Leg) []byte {
	if l == s.a {
		return s.lastToA
	}
	return s.lastToB
}

func (s *Session) role(l *sip.Leg) string {
	if l == s.a {
		return roles[0]
	}
	return roles[1]
}
