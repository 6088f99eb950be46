package session

import (
	"errors"
	"testing"
)

func TestTransitionTableNamesOnlyKnownStates(t *testing.T) {
	for from, tos := range transitions {
		if !from.Valid() {
			t.Errorf("table has unknown from-state %q", from)
		}
		for _, to := range tos {
			if !to.Valid() {
				t.Errorf("%s → unknown state %q", from, to)
			}
			if to == from {
				t.Errorf("%s lists itself", from)
			}
		}
	}
	for _, s := range AllStates {
		if _, ok := transitions[s]; !ok {
			t.Errorf("state %s has no row in the table", s)
		}
	}
}

func TestEndedStatesOnlyLeadToClosed(t *testing.T) {
	for _, s := range AllStates {
		if !s.Ended() {
			continue
		}
		for _, to := range transitions[s] {
			if to != Closed {
				t.Errorf("ended state %s may go to %s", s, to)
			}
		}
	}
}

func TestEveryLiveStateCanBeHungUpClosedAndAborted(t *testing.T) {
	for _, s := range AllStates {
		if s.Ended() {
			continue
		}
		for _, to := range []State{HungUp, Closed, Aborted} {
			if !CanTransition(s, to) {
				t.Errorf("%s cannot go to %s", s, to)
			}
		}
	}
}

func TestCallWalks(t *testing.T) {
	walks := map[string][]State{
		"answered, caller hangs up": {Setup, Ringing, InCall, CallerHungUp, Closed},
		"answered without ringing":  {Setup, InCall, CalleeHungUp},
		"busy":                      {Setup, Ringing, Busy},
		"no answer":                 {Setup, Ringing, NotAnswered},
		"cancelled":                 {Setup, Ringing, Cancelled},
		"held and resumed":          {Setup, Ringing, InCall, CalleeOnHold, InCall, CallerOnHold, InCall},
		"transfer fails":            {InCall, TransferRequested, Transferring, TransferFailed, InCall},
		"transferred by REFER":      {InCall, TransferRequested, Transferring, TransferCompleted, Closed},
		"callctl connects target":   {InCall, TransferRequested, Transferring, InCall},
		"REFER refused, restored":   {CalleeOnHold, TransferRequested, TransferFailed, CalleeOnHold},
		"forwarded":                 {Setup, Ringing, Redirected, Ringing, InCall},
	}
	for name, walk := range walks {
		for i := 1; i < len(walk); i++ {
			if !CanTransition(walk[i-1], walk[i]) {
				t.Errorf("%s: %s → %s refused", name, walk[i-1], walk[i])
			}
		}
	}
}

func TestIllegalTransitionsAreRefused(t *testing.T) {
	for _, c := range [][2]State{{TransferCompleted, InCall}, {TransferRequested, TransferCompleted}, {Setup, CallerOnHold}, {InCall, Ringing}, {Busy, InCall}, {Closed, InCall}, {CallerHungUp, InCall}} {
		if CanTransition(c[0], c[1]) {
			t.Errorf("%s → %s allowed", c[0], c[1])
		}
		var err error = &TransitionError{From: c[0], To: c[1]}
		var te *TransitionError
		if !errors.As(err, &te) || te.Error() == "" {
			t.Errorf("TransitionError does not describe itself")
		}
	}
}

func TestFailureCodesMapToEndStates(t *testing.T) {
	cases := map[int]State{486: Busy, 600: Busy, 404: NotFound, 604: NotFound, 408: NotAnswered, 480: NotAnswered, 487: NotAnswered, 503: Error, 500: Error, 403: Error}
	for code, want := range cases {
		if got := failureState(code); got != want {
			t.Errorf("failureState(%d) = %s, want %s", code, got, want)
		}
	}
}

// Every live state may end as ERROR: the state a session is forced into when
// it would otherwise stop without a final state (Session.cleanup).
func TestEveryLiveStateCanEndAsError(t *testing.T) {
	for _, s := range AllStates {
		if !s.Ended() && !CanTransition(s, Error) {
			t.Errorf("%s cannot go to %s", s, Error)
		}
	}
}
