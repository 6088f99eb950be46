package listen

import "errors"

// Sentinel errors. Every error the package returns wraps one of them (or a
// context error), so the API can map it with errors.Is.
var (
	// ErrInvalidArgument: the offer or a Track cannot be used; the message
	// says which and what was expected. An HTTP API answers 400.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: no listener has that id (it ended, or never was).
	ErrNotFound = errors.New("listener not found")
	// ErrCallEnded: the call's media ended (StopSession, or a closed
	// endpoint) while the listener was starting.
	ErrCallEnded = errors.New("call ended")
	// ErrClosed: the Manager has been closed.
	ErrClosed = errors.New("listen manager closed")
)
