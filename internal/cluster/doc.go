// Package cluster makes callctl nodes sharing one live-call store act as
// one (docs/cluster.md): each node announces itself with a heartbeat; the
// calls of a node whose heartbeat lapses (it died) or that leaves (SIGTERM)
// are claimed by the others, one compare-and-swap on the record's owner
// each, spread over the survivors, and re-adopted there as after a restart
// (session.Engine.Recover); a node whose call was claimed lets it go.
//
// The nodes also share their sessions over NATS (bus.go): each publishes
// its sessions' events and takes the others', and an operation on a call
// another node carries is forwarded to that node as a request and
// answered as if local (ops.go): listen-in included, whose offer goes to
// the owner and whose answer comes back, so the owner runs the listener
// and the browser's audio comes from it. Everything read off NATS is
// bounded and checked first: anyone on the NATS system can publish.
package cluster
