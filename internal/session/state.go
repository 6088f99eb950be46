package session

import (
	"fmt"
	"slices"
	"strings"
)

// State is a session's state; the strings are the API's.
type State string

// Live states.
const (
	Setup             State = "SETUP"
	Ringing           State = "RINGING"
	InCall            State = "IN_CALL"
	CallerOnHold      State = "CALLER_ON_HOLD" // the callee holds the caller
	CalleeOnHold      State = "CALLEE_ON_HOLD" // the caller holds the callee
	OnHold            State = "ON_HOLD"        // both held by a client
	TransferRequested State = "TRANSFER_REQUESTED"
	Transferring      State = "TRANSFERRING"
	TransferFailed    State = "TRANSFER_FAILED"
	Redirected        State = "REDIRECTED"
)

// Ended states. TRANSFER_COMPLETED is final: the transferee reached the
// target by REFER and callctl is out of the call. A transfer callctl
// completes itself (the fallback, where it dials the target) keeps the call
// and goes TRANSFERRING → IN_CALL instead.
const (
	TransferCompleted State = "TRANSFER_COMPLETED"
	CallerHungUp      State = "CALLER_HUNG_UP"
	CalleeHungUp      State = "CALLEE_HUNG_UP"
	HungUp            State = "HUNG_UP"
	Closed            State = "CLOSED"
	Busy              State = "BUSY"
	NotFound          State = "NOT_FOUND"
	NotAnswered       State = "NOT_ANSWERED"
	Cancelled         State = "CANCELLED"
	Error             State = "ERROR"
	Aborted           State = "ABORTED"
)

// AllStates lists every state, live ones first.
var AllStates = []State{
	Setup, Ringing, InCall, CallerOnHold, CalleeOnHold, OnHold, TransferRequested, Transferring,
	TransferFailed, Redirected, TransferCompleted, CallerHungUp, CalleeHungUp, HungUp, Closed,
	Busy, NotFound, NotAnswered, Cancelled, Error, Aborted,
}

// Ended reports whether s is a final state.
func (s State) Ended() bool {
	switch s {
	case TransferCompleted, CallerHungUp, CalleeHungUp, HungUp, Closed, Busy, NotFound,
		NotAnswered, Cancelled, Error, Aborted:
		return true
	}
	return false
}

// Valid reports whether s is one of the states.
func (s State) Valid() bool { return slices.Contains(AllStates, s) }

var (
	// endedByClient are the ends any live state may reach: a client's
	// hangup/close, an internal error, callctl stopping.
	endedByClient = []State{HungUp, Closed, Error, Aborted}
	// ringingEnds are how an unanswered call can end.
	ringingEnds = []State{Busy, NotFound, NotAnswered, Cancelled}
	// talkingEnds are how an answered call can end.
	talkingEnds = []State{CallerHungUp, CalleeHungUp}
	holds       = []State{CallerOnHold, CalleeOnHold, OnHold}
)

func join(lists ...[]State) []State {
	var out []State
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// transitions is the whole state machine: from → the states it may go to.
// Tests read it; nothing else decides whether a change is legal.
var transitions = map[State][]State{
	Setup:             join([]State{Ringing, InCall, Redirected}, ringingEnds, endedByClient),
	Ringing:           join([]State{InCall, Redirected}, ringingEnds, endedByClient),
	Redirected:        join([]State{Ringing, InCall}, ringingEnds, endedByClient),
	InCall:            join(holds, []State{TransferRequested}, talkingEnds, endedByClient),
	CallerOnHold:      join([]State{InCall, CalleeOnHold, OnHold, TransferRequested}, talkingEnds, endedByClient),
	CalleeOnHold:      join([]State{InCall, CallerOnHold, OnHold, TransferRequested}, talkingEnds, endedByClient),
	OnHold:            join([]State{InCall, TransferRequested}, talkingEnds, endedByClient),
	TransferRequested: join([]State{Transferring, TransferFailed}, talkingEnds, endedByClient),
	Transferring:      join([]State{TransferCompleted, TransferFailed, InCall}, talkingEnds, endedByClient),
	TransferFailed:    join([]State{InCall}, holds, talkingEnds, endedByClient),
	TransferCompleted: {Closed},
	CallerHungUp:      {Closed},
	CalleeHungUp:      {Closed},
	HungUp:            {Closed},
	Busy:              {Closed},
	NotFound:          {Closed},
	NotAnswered:       {Closed},
	Cancelled:         {Closed},
	Error:             {Closed},
	Aborted:           {Closed},
	Closed:            nil,
}

// Transitions returns the states s may move to.
func Transitions(s State) []State { return slices.Clone(transitions[s]) }

// CanTransition reports whether from → to is in the table.
func CanTransition(from, to State) bool { return slices.Contains(transitions[from], to) }

// TransitionError is a change the table does not allow.
type TransitionError struct{ From, To State }

func (e *TransitionError) Error() string {
	allowed := make([]string, 0, len(transitions[e.From]))
	for _, s := range transitions[e.From] {
		allowed = append(allowed, string(s))
	}
	return fmt.Sprintf("session: illegal transition %s → %s (from %s only: %s)", e.From, e.To, e.From, strings.Join(allowed, ", "))
}
