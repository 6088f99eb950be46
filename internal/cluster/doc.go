// Package cluster makes callctl nodes sharing one live-call store act as
// one (docs/cluster.md): each node announces itself with a heartbeat; the
// calls of a node whose heartbeat lapses (it died) or that leaves (SIGTERM)
// are claimed by the others, one compare-and-swap on the record's owner
// each, spread over the survivors, and re-adopted there as after a restart
// (session.Engine.Recover); a node whose call was claimed lets it go.
package cluster
