// Package audit keeps callctl's audit trail and call records in an embedded
// SQLite database (modernc.org/sqlite, pure Go). Every API request that
// touches a session is a Request row, written by RecordRequest before the API
// answers; every session is a Call row, written (and rewritten, keyed by
// session id) by RecordCall. Requests and Calls read them back, newest first,
// for GET /api/v1/audit and GET /api/v1/calls.
//
// A record is durable when its Record method returns: the database runs in
// WAL mode with synchronous=FULL, so each commit is fsynced before the
// records in it are reported written, and a crash, kill -9 or power cut
// afterwards loses nothing already answered. Writes are group-committed: one
// goroutine per Store takes whatever records are queued when it is free (up
// to 256) and writes them in one transaction with INSERTs prepared once per
// Store, so records written concurrently share one fsync while each caller
// still waits for its own record's commit. The schema is versioned with
// PRAGMA user_version; Open creates the file and migrates it forward with the
// migrations listed in schema.go.
//
// The package knows nothing of HTTP, SIP or sessions: callers hand it plain
// values. Errors wrap [ErrInvalidArgument] (the message names the field) or
// [ErrClosed]; anything else is a database failure and names the file.
package audit
