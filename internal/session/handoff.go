package session

import (
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// releaseCmd tells a session that another node owns its call now (it
// claimed the record: this node died for it, or handed it over): the
// session lets go without a word on the wire.
type releaseCmd struct{ to string }

// Release lets go of session id, whose call node to re-adopted (its
// record now names to): no BYE, no call record (the new owner writes
// them), the relay closed once the parties moved. It reports whether a
// live session had that id.
func (e *Engine) Release(id, to string) bool {
	s := e.reg.liveSession(id)
	if s == nil {
		return false
	}
	return s.q.push(releaseCmd{to: to})
}

// Owned lists the ids of the live sessions this node keeps records of.
func (e *Engine) Owned() []string {
	var ids []string
	for _, s := range e.reg.liveSessions() {
		if s.kept || s.recovered != nil {
			ids = append(ids, s.id)
		}
	}
	return ids
}

func (s *Session) onRelease(ev releaseCmd) {
	s.log.Info("call handed to another node", zap.String("node", ev.to))
	s.handedTo = ev.to
	s.stopMusic()
	for _, l := range []*sip.Leg{s.a, s.b} {
		if l != nil {
			l.SetSink(nil)
			l.Close() // the new owner has the dialog: nothing is sent
		}
	}
	if t := s.transfer; t != nil && t.leg != nil {
		t.leg.SetSink(nil)
		t.leg.Close()
		s.transfer = nil
	}
	s.kept = false // the record is the new owner's
	s.finished = true
}

// cleanupHandedOff is cleanup for a session whose call went to another
// node: timers stopped, relay closed, the session forgotten here without
// an end state (it goes on there).
func (s *Session) cleanupHandedOff() {
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	for _, t := range s.timers {
		t.Stop()
	}
	s.cancel()
	s.wg.Wait()
	for _, item := range append(s.leftover, s.q.take()...) {
		refuseLate(item)
	}
	s.leftover = nil
	s.q.close()
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
		s.e.cfg.Listen.StopSession(s.id)
	}
	s.e.reg.handedOff(s)
}
