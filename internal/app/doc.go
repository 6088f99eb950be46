// Package app wires callctl together: it turns a config.Config into a SIP
// agent, a media port pool and a session engine, runs them, and on shutdown
// drains live calls before it stops. cmd/callctl and the end-to-end tests
// both start callctl through it. App.Reload (reload.go; SIGHUP and POST
// /api/v1/config/reload) re-reads the configuration and switches the
// reloadable parts of each package at once, leaving live calls alone.
package app
