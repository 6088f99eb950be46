// Package callctltest holds what the test packages that run callctl
// in-process (test/e2e, test/pbx) share: reading its session events and
// waiting for them, and small polling helpers.
package callctltest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/session"
)

// Events reads one subscription to callctl's session events and keeps what
// it has read, in order, so a test can wait for an event that may already
// have arrived and check the whole walk of a session afterwards.
type Events struct {
	Sub  *session.Subscription
	Seen []session.Event // read from Sub so far, in order
}

// WaitEvent returns the first event, already read or arriving within
// timeout, that match accepts; it fails the test if none does.
func (c *Events) WaitEvent(t testing.TB, timeout time.Duration, what string, match func(session.Event) bool) session.Event {
	t.Helper()
	for _, e := range c.Seen {
		if match(e) {
			return e
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.Sub.C():
			if !ok {
				t.Fatalf("session events ended (subscriber dropped: %v) while waiting for %s; events: %s", c.Sub.Dropped(), what, c.Describe())
			}
			c.Seen = append(c.Seen, e)
			if match(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %s within %v; events: %s", what, timeout, c.Describe())
		}
	}
}

// Drain reads the events already waiting, without blocking.
func (c *Events) Drain() {
	for {
		select {
		case e, ok := <-c.Sub.C():
			if !ok {
				return
			}
			c.Seen = append(c.Seen, e)
		default:
			return
		}
	}
}

// WaitEnded waits for session id to reach an ended state and returns that
// event (its Session is the final snapshot).
func (c *Events) WaitEnded(t testing.TB, id string, timeout time.Duration) session.Event {
	t.Helper()
	return c.WaitEvent(t, timeout, fmt.Sprintf("session %s ending", id), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State.Ended()
	})
}

// Walk is the states session id went through, from the events read so far:
// the state before the first event, then each new state.
func (c *Events) Walk(id string) []session.State {
	var states []session.State
	for _, e := range c.Seen {
		if e.SessionID != id || e.Type != session.EventStateChanged {
			continue
		}
		if len(states) == 0 && e.Previous != "" {
			states = append(states, e.Previous)
		}
		states = append(states, e.State)
	}
	return states
}

// ExpectWalk checks session id went exactly through want.
func (c *Events) ExpectWalk(t testing.TB, id string, want ...session.State) {
	t.Helper()
	if got := c.Walk(id); !slices.Equal(got, want) {
		t.Errorf("session %s went %v; want %v", id, got, want)
	}
}

// Describe lists the events read so far, for a failure message.
func (c *Events) Describe() string {
	var b strings.Builder
	for _, e := range c.Seen {
		switch {
		case e.Type == session.EventOperation && e.Operation != nil:
			fmt.Fprintf(&b, "\n  #%d %s operation %s %v: %s %s (in %s)", e.Seq, e.SessionID, e.Operation.Name, e.Operation.Args, e.Operation.Result, e.Operation.Error, e.State)
		case e.Type == session.EventDTMFReceived && e.DTMF != nil:
			fmt.Fprintf(&b, "\n  #%d %s DTMF %+v (in %s)", e.Seq, e.SessionID, *e.DTMF, e.State)
		default:
			fmt.Fprintf(&b, "\n  #%d %s %s %s→%s (%s)", e.Seq, e.SessionID, e.Type, e.Previous, e.State, e.Reason)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// LegStats is the media counters of the leg with role ("caller" or
// "callee"); zero counters when it has none.
func LegStats(s session.Snapshot, role string) session.LegStats {
	for _, l := range s.Legs {
		if l.Role == role {
			return l
		}
	}
	return session.LegStats{Role: role}
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
