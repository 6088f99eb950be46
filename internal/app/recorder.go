package app

import (
	"context"
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/session"
	"go.uber.org/zap"
)

// startRecorder writes a call record for every session that ends, with the
// operations applied to it. It runs until stopRecorder.
func (a *App) startRecorder() {
	sub := a.reg.Subscribe(4096)
	a.recorderSub = sub
	a.recorder.Add(1)
	go func() {
		defer a.recorder.Done()
		ops := map[string][]string{}
		for ev := range sub.C() {
			switch ev.Type {
			case session.EventOperation:
				if o := ev.Operation; o != nil && o.Result != "progress" {
					ops[ev.SessionID] = append(ops[ev.SessionID], fmt.Sprintf("%s %s", o.Name, o.Result))
				}
			case session.EventStateChanged:
				if !ev.State.Ended() || (ev.State == session.TransferCompleted && ev.Session.End.IsZero()) {
					continue
				}
				s := ev.Session
				c := audit.Call{SessionID: s.ID, Caller: s.Caller.Number, CallerName: s.Caller.DisplayName,
					Callee: s.Callee.Number, CalleeName: s.Callee.DisplayName, Dialled: s.Dialled,
					Start: s.Start, Answer: s.Answer, End: s.End, State: string(s.State), EndReason: s.EndReason,
					Operations: ops[ev.SessionID]}
				if c.End.IsZero() {
					c.End = time.Now()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := a.store.RecordCall(ctx, c); err != nil {
					a.log.Error("call record write failed", zap.String("session", s.ID), zap.Error(err))
				}
				cancel()
				if ev.State == session.Closed || ev.State != session.TransferCompleted {
					delete(ops, ev.SessionID)
				}
			}
		}
		if sub.Dropped() {
			a.log.Error("call recorder fell behind; some call records are missing")
		}
	}()
}

func (a *App) stopRecorder() {
	if a.recorderSub != nil {
		a.recorderSub.Close()
	}
	a.recorder.Wait()
}
