package media

import "errors"

// Sentinel errors. Every error the package returns wraps one of them, so
// callers can map it with errors.Is (for example ErrBadSDP to a SIP 488).
var (
	// ErrInvalidArgument: a value passed in is out of range or malformed;
	// the message names it and the allowed values.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNoPorts: every port pair in the pool is in use, resting, or refused
	// by the operating system.
	ErrNoPorts = errors.New("no free RTP port pair")
	// ErrClosed: the endpoint has been closed.
	ErrClosed = errors.New("endpoint closed")
	// ErrNoRemote: the endpoint does not know where to send yet (no SDP
	// remote and no packet received to latch on).
	ErrNoRemote = errors.New("no remote address")
	// ErrBadSDP: an SDP body cannot be used; the message says what is wrong.
	ErrBadSDP = errors.New("bad SDP")
)
