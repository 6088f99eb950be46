// Package api is callctl's HTTP and WebSocket face. It translates requests
// into session operations and session events into JSON, and knows no SIP.
// Every request is authenticated by internal/auth (bearer tokens), checked
// against the client's privileges and scope, and — when it touches a
// session, or asks for a configuration reload — written to the audit trail
// before it is answered. Errors are
// JSON: {"error":{"code":"...","message":"..."}} with the HTTP status the
// session package's typed error maps to (400, 401, 403, 404, 409, 502, 504).
//
// Routes are listed in openapi.json, which a test checks against the mux.
package api
