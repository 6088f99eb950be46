package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/listen"
)

var listenStates = []State{InCall, CallerOnHold, CalleeOnHold, OnHold}

// ListenInfo describes a listener event.
type ListenInfo struct {
	ListenID string `json:"listenId"`
	Client   string `json:"client,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Listen starts a listener for client on a live call: the browser's WebRTC
// offer in, the answer and the listener's id out. The call's two parties
// become two audio tracks ("caller", "callee"), forked from the relay and
// never transcoded.
func (e *Engine) Listen(ctx context.Context, id, client, offer string) (listenID, answer string, err error) {
	if e.cfg.Listen == nil {
		return "", "", &OpError{Code: CodeWrongState, Op: "startListen", Msg: "listen-in is not enabled"}
	}
	if offer == "" {
		return "", "", invalidArg("startListen", "sdp", "sdp is empty: send the browser's WebRTC offer")
	}
	var caller, callee listen.Track
	err = e.run(ctx, id, &opRequest{name: "startListen", args: map[string]string{"client": client}, start: func(s *Session) {
		if !s.requireState(listenStates) {
			return
		}
		var terr error
		caller, terr = listen.TrackFor(s.ea, s.fromA, s.fromB)
		if terr == nil {
			callee, terr = listen.TrackFor(s.eb, s.fromB, s.fromB)
		}
		if terr != nil {
			s.finishOp(&OpError{Code: CodeWrongState, Op: "startListen", Msg: "the call's audio cannot be listened to: " + terr.Error()})
			return
		}
		s.finishOp(nil)
	}})
	if err != nil {
		return "", "", err
	}
	listenID, answer, err = e.cfg.Listen.Start(ctx, id, client, offer, caller, callee)
	switch {
	case err == nil:
		e.publishListen(id, EventListenStarted, ListenInfo{ListenID: listenID, Client: client})
		return listenID, answer, nil
	case errors.Is(err, listen.ErrInvalidArgument):
		return "", "", invalidArg("startListen", "sdp", err.Error())
	case errors.Is(err, listen.ErrCallEnded):
		return "", "", &OpError{Code: CodeWrongState, Op: "startListen", Msg: "the call ended"}
	default:
		return "", "", &OpError{Code: CodeTimeout, Op: "startListen", Msg: err.Error()}
	}
}

// StopListen ends a listener of session id.
func (e *Engine) StopListen(ctx context.Context, id, listenID string) error {
	if e.cfg.Listen == nil {
		return &OpError{Code: CodeNotFound, Op: "stopListen", Msg: "listen-in is not enabled"}
	}
	info, ok := e.cfg.Listen.Lookup(listenID)
	if !ok || info.SessionID != id {
		return &OpError{Code: CodeNotFound, Op: "stopListen", Msg: fmt.Sprintf("no listener %q on session %q", listenID, id)}
	}
	if err := e.cfg.Listen.Stop(listenID); err != nil && !errors.Is(err, listen.ErrNotFound) {
		return &OpError{Code: CodeTimeout, Op: "stopListen", Msg: err.Error()}
	}
	return nil
}

// ListenerEnded is what the app wires to listen.Manager.OnEnded: it
// publishes LISTEN_STOPPED.
func (e *Engine) ListenerEnded(listenID, sessionID, client, reason string) {
	e.publishListen(sessionID, EventListenStopped, ListenInfo{ListenID: listenID, Client: client, Reason: reason})
}

func (e *Engine) publishListen(id string, t EventType, info ListenInfo) {
	snap, _ := e.reg.Get(id)
	e.reg.publish(Event{Type: t, SessionID: id, State: snap.State, Time: time.Now(), Session: snap, Listen: &info})
}
