// Package store keeps callctl's live-call state where it outlives the
// process: NATS JetStream key-value buckets (docs/design.md, "State that
// outlives the process"). A single callctl runs an embedded NATS server
// with a JetStream file store; nodes of a cluster connect to an external
// NATS system instead. Both are the same code from Open on.
//
// The store knows keys, values and revisions, not calls: package session
// decides what a record holds and when it is written. Writes go through a
// Writer, which coalesces a key's updates and applies them with
// compare-and-swap on the key's revision, off the caller's path.
package store
