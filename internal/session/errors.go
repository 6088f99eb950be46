package session

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an operation's failure; the API maps each to an HTTP
// status (400, 409, 404, 502, 504).
type Code string

const (
	CodeInvalidArgument Code = "invalid_argument"
	CodeWrongState      Code = "wrong_state"
	CodeNotFound        Code = "not_found"
	CodePeerRefused     Code = "peer_refused"
	CodeTimeout         Code = "timeout"
)

// Sentinels for errors.Is: every *OpError matches the one of its Code.
var (
	ErrInvalidArgument = &OpError{Code: CodeInvalidArgument}
	ErrWrongState      = &OpError{Code: CodeWrongState}
	ErrNotFound        = &OpError{Code: CodeNotFound}
	ErrPeerRefused     = &OpError{Code: CodePeerRefused}
	ErrTimeout         = &OpError{Code: CodeTimeout}
)

// OpError is why an operation failed. An operation that fails changes
// nothing: the call and its state stay as they were.
type OpError struct {
	Code Code
	// Op is the operation ("hold", "blindTransfer", …).
	Op string
	// Field and Allowed describe an invalid argument.
	Field   string
	Allowed []string
	// State and AllowedStates describe a wrong-state refusal.
	State         State
	AllowedStates []State
	// Party ("caller"/"callee" and number) and Status describe a refusal by
	// a peer.
	Party  string
	Status int
	// Msg is the human sentence.
	Msg string
	// Err is the cause, when there is one (a *policy.Error for a refused
	// target: errors.Is(err, policy.ErrNotAllowed) holds through it).
	Err error
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

func (e *OpError) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	b.WriteString(e.Msg)
	switch e.Code {
	case CodeInvalidArgument:
		if len(e.Allowed) > 0 {
			fmt.Fprintf(&b, " (%s must be one of: %s)", e.Field, strings.Join(e.Allowed, ", "))
		}
	case CodeWrongState:
		allowed := make([]string, len(e.AllowedStates))
		for i, s := range e.AllowedStates {
			allowed[i] = string(s)
		}
		if len(allowed) == 0 {
			fmt.Fprintf(&b, " (session is %s)", e.State)
		} else {
			fmt.Fprintf(&b, " (session is %s; allowed in %s)", e.State, strings.Join(allowed, ", "))
		}
	}
	return b.String()
}

// Is makes errors.Is(err, ErrWrongState) and friends work.
func (e *OpError) Is(target error) bool {
	var t *OpError
	if !errors.As(target, &t) {
		return false
	}
	return t.Msg == "" && t.Code == e.Code
}

func invalidArg(op, field, msg string, allowed ...string) *OpError {
	return &OpError{Code: CodeInvalidArgument, Op: op, Field: field, Allowed: allowed, Msg: msg}
}

func wrongState(op string, cur State, allowed []State) *OpError {
	return &OpError{Code: CodeWrongState, Op: op, State: cur, AllowedStates: allowed,
		Msg: fmt.Sprintf("not allowed while the session is %s", cur)}
}

func peerRefused(op, party string, status int, reason string) *OpError {
	return &OpError{Code: CodePeerRefused, Op: op, Party: party, Status: status,
		Msg: fmt.Sprintf("the %s refused with %d %s", party, status, reason)}
}

func timeout(op, what string) *OpError {
	return &OpError{Code: CodeTimeout, Op: op, Msg: what}
}
