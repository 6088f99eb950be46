package sip

import (
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// withCounter counts the child cores made from it (zap's With, which
// clones the encoder in a real logger).
type withCounter struct {
	zapcore.Core
	n *atomic.Int32
}

func (c withCounter) With(f []zapcore.Field) zapcore.Core {
	c.n.Add(1)
	return withCounter{c.Core.With(f), c.n}
}

// A leg's logger carries the owner's fields and the leg's own on every
// line, but builds the child logger only when a line is logged at an enabled
// level: nothing per call for a leg that logs nothing.
func TestLegLoggerFieldsAreAddedLazily(t *testing.T) {
	obs, logs := observer.New(zapcore.InfoLevel)
	var n atomic.Int32
	owner := zap.New(withCounter{obs, &n}).WithLazy(zap.String("session", "s1"))
	l := &Leg{id: "a7", callID: "c1@example"}
	l.SetLogger(owner)
	l.logger().Debug("below the level")
	if got := n.Load(); got != 0 {
		t.Fatalf("%d child loggers built before a line was logged, want 0", got)
	}
	l.logger().Info("hello")
	if got := n.Load(); got != 2 {
		t.Errorf("%d child loggers built for the first line, want 2 (owner's and leg's fields)", got)
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d lines logged, want 1", len(entries))
	}
	want := map[string]any{"session": "s1", "call_id": "c1@example", "leg": "a7"}
	got := entries[0].ContextMap()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %v, want %v (fields %v)", k, got[k], v, got)
		}
	}
}
