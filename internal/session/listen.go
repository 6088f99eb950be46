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
//
// A call another node carries is listened to there (docs/cluster.md,
// "Several nodes"): the offer, checked here first, goes to the owner,
// which checks it again and runs the listener itself, so the media and
// ICE candidates are the owner's; its answer and listen id come back as
// if from here. The caller (the API) has checked the client's privilege
// and scope and audits the request on this node.
func (e *Engine) Listen(ctx context.Context, id, client, offer string) (listenID, answer string, err error) {
	if err := checkListenOffer(offer); err != nil {
		return "", "", err
	}
	if node, ok := e.remoteOwner(id); ok {
		return e.listenThere(ctx, node, id, client, offer)
	}
	return e.listenHere(ctx, id, client, offer)
}

// checkListenOffer refuses what cannot be a listen-in offer, whoever sent
// it: a client, or another node forwarding a client's.
func checkListenOffer(offer string) error {
	if offer == "" {
		return invalidArg("startListen", "sdp", "sdp is empty: send the browser's WebRTC offer")
	}
	if err := listen.CheckOffer(offer); err != nil {
		return invalidArg("startListen", "sdp", err.Error())
	}
	return nil
}

// listenThere asks node, the owner, for the listener and checks what it
// answers before the client gets it.
func (e *Engine) listenThere(ctx context.Context, node, id, client, offer string) (string, string, error) {
	res, err := e.cfg.Forwarder.Forward(ctx, node, ForwardedOp{Name: "startListen", ID: id,
		Args: map[string]string{"client": client, "sdp": offer}})
	if err != nil {
		return "", "", err
	}
	listenID, answer := res["listenId"], res["sdp"]
	if !listen.ValidID(listenID) {
		return "", "", timeout("startListen", fmt.Sprintf("node %s answered without a valid listen id", node))
	}
	if err := listen.CheckAnswer(answer); err != nil {
		// Its listener ends by itself when nobody connects
		// (listen.Config.ConnectTimeout); say so at once all the same.
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = e.cfg.Forwarder.Forward(stop, node, ForwardedOp{Name: "stopListen", ID: id, Args: map[string]string{"listenId": listenID}})
		return "", "", timeout("startListen", fmt.Sprintf("node %s answered an unusable SDP: %v", node, err))
	}
	return listenID, answer, nil
}

// listenHere runs the listener on this node, which carries the call; the
// offer has been checked (checkListenOffer).
func (e *Engine) listenHere(ctx context.Context, id, client, offer string) (listenID, answer string, err error) {
	if e.cfg.Listen == nil {
		return "", "", &OpError{Code: CodeWrongState, Op: "startListen", Msg: "listen-in is not enabled"}
	}
	var caller, callee listen.Track
	err = e.run(ctx, id, &opRequest{name: "startListen", args: map[string]string{"client": client}, here: true, start: func(s *Session) {
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

// StopListen ends a listener of session id; on a call another node
// carries, that node ends it.
func (e *Engine) StopListen(ctx context.Context, id, listenID string) error {
	if node, ok := e.remoteOwner(id); ok {
		if !listen.ValidID(listenID) {
			return noListener(id, listenID)
		}
		_, err := e.cfg.Forwarder.Forward(ctx, node, ForwardedOp{Name: "stopListen", ID: id, Args: map[string]string{"listenId": listenID}})
		return err
	}
	return e.stopListenHere(id, listenID)
}

// stopListenHere ends a listener this node runs.
func (e *Engine) stopListenHere(id, listenID string) error {
	if e.cfg.Listen == nil {
		return &OpError{Code: CodeNotFound, Op: "stopListen", Msg: "listen-in is not enabled"}
	}
	info, ok := e.cfg.Listen.Lookup(listenID)
	if !ok || info.SessionID != id {
		return noListener(id, listenID)
	}
	if err := e.cfg.Listen.Stop(listenID); err != nil && !errors.Is(err, listen.ErrNotFound) {
		return &OpError{Code: CodeTimeout, Op: "stopListen", Msg: err.Error()}
	}
	return nil
}

func noListener(id, listenID string) error {
	return &OpError{Code: CodeNotFound, Op: "stopListen", Msg: fmt.Sprintf("no listener %q on session %q", listenID, id)}
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
