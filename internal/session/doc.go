// Package session owns calls. Each call through callctl is a Session: a state
// machine (the states of docs/design.md, every transition listed in one table) run
// by one goroutine that is the only code allowed to change the call, so SIP
// events arriving out of order or concurrently cannot race. The Engine
// receives new INVITEs from internal/sip, routes them, sets up the media relay
// from internal/media, and relays responses, re-INVITEs, BYEs and CANCELs
// between the two legs. The Registry finds sessions by id or number, keeps
// ended ones readable for a while, and publishes every state change as an
// Event with a sequence number that only grows; a slow subscriber is dropped,
// never waited for.
package session
