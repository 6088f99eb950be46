package app

import (
	"context"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/session"
	"go.uber.org/zap"
)

// recordCall stores the call record of an ended session. The engine calls
// it on the session's goroutine before answering the operation that ended
// the call, so a record is durable before the API's answer is sent.
func (a *App) recordCall(s session.Snapshot, ops []string) {
	if a.store == nil {
		return
	}
	c := audit.Call{SessionID: s.ID, Caller: s.Caller.Number, CallerName: s.Caller.DisplayName,
		Callee: s.Callee.Number, CalleeName: s.Callee.DisplayName, Dialled: s.Dialled,
		Start: s.Start, Answer: s.Answer, End: s.End, State: string(s.State), EndReason: s.EndReason,
		Operations: ops}
	if c.End.IsZero() {
		c.End = time.Now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.store.RecordCall(ctx, c); err != nil {
		a.log.Error("call record write failed", zap.String("session", s.ID), zap.Error(err))
	}
}
