package session

import (
	"errors"

	"github.com/callctl/callctl/internal/policy"
)

// CheckTarget checks a target of operation op ("blindTransfer", "forward")
// as the operation itself will: a dial string, or a SIP URI on an allowed
// host. The error is an invalid_argument *OpError; for a host outside the
// policy errors.Is(err, policy.ErrNotAllowed) holds. The API calls it to
// refuse a target before it checks the client's own target patterns.
func (e *Engine) CheckTarget(op, target string) (policy.Target, error) {
	t, oe := e.checkTarget(op, "target", target)
	if oe != nil {
		return t, oe
	}
	return t, nil
}

// checkTarget checks a transfer or forward target against the engine's
// policy (internal/policy): a dial string, or a SIP URI on an allowed host.
func (e *Engine) checkTarget(op, field, target string) (policy.Target, *OpError) {
	t, err := e.Targets().Check(field, target)
	if err != nil {
		return t, targetError(op, err)
	}
	return t, nil
}

// targetError is a refused target as an invalid_argument *OpError; a
// policy refusal unwraps to policy.ErrNotAllowed.
func targetError(op string, err error) *OpError {
	oe := &OpError{Code: CodeInvalidArgument, Op: op, Msg: err.Error(), Err: err}
	var pe *policy.Error
	if errors.As(err, &pe) {
		oe.Field, oe.Allowed = pe.Field, pe.Allowed
	}
	return oe
}
