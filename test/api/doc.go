// Package api holds the end-to-end tests of callctl's control API: real SIPp
// calls through callctl, driven and watched only through HTTP and the
// WebSocket event stream, the way a supervisor's script or the JavaScript
// SDK would. They check who may do what (privileges, scope, tokens), that
// the event stream is complete and resumable, that bad requests are refused
// by name, and that the audit trail and call records survive kill -9 of the
// real binary.
package api
