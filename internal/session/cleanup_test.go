package session

import (
	"context"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap/zaptest"
)

// A session whose goroutine stops while it is still live (a bug path: the
// loop ended without a final state) is ended ERROR by cleanup, with a
// STATE_CHANGED event saying from which state and why, and is retired with
// that final state, never dropped silently.
func TestCleanupEndsALiveSessionAsErrorWithItsEvent(t *testing.T) {
	reg := NewRegistry(time.Minute)
	e := NewEngine(Config{MaxSessions: 1}, zaptest.NewLogger(t), nil, reg)
	sub := reg.Subscribe(16)
	defer sub.Close()
	s := &Session{id: "s1", e: e, log: zaptest.NewLogger(t), q: newInbox(), inviting: map[*sip.Leg]*outInvite{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.snap = Snapshot{ID: "s1", State: TransferRequested, Start: time.Now()}
	reg.add(s)

	s.cleanup()

	snap, ok := reg.Get("s1")
	if !ok {
		t.Fatal("the session is gone from the registry; want it retained with its final state")
	}
	if snap.State != Error || snap.End.IsZero() {
		t.Errorf("retained as %s (end %v); want %s with an end time", snap.State, snap.End, Error)
	}
	select {
	case ev := <-sub.C():
		if ev.Type != EventStateChanged || ev.State != Error || ev.Previous != TransferRequested || ev.Reason == "" {
			t.Errorf("event %+v; want STATE_CHANGED %s from %s with a reason", ev, Error, TransferRequested)
		}
	case <-time.After(time.Second):
		t.Error("no event for the forced end")
	}
}
