// Package audit keeps callctl's audit trail and call records in an embedded
// SQLite database (modernc.org/sqlite, pure Go). Every API request that
// touches a session is a Request row, written by RecordRequest before the API
// answers; every session is a Call row, written (and rewritten, keyed by
// session id) by RecordCall. Requests and Calls read them back, newest first,
// for GET /api/v1/audit and GET /api/v1/calls.
//
// A record is durable when its Record method returns: the database runs in
// WAL mode with synchronous=FULL, so each write is fsynced before it returns,
// and a crash or kill -9 afterwards loses nothing already answered. The schema
// is versioned with PRAGMA user_version; Open creates the file and migrates it
// forward with the migrations listed in schema.go.
//
// The package knows nothing of HTTP, SIP or sessions: callers hand it plain
// values. Errors wrap [ErrInvalidArgument] (the message names the field) or
// [ErrClosed]; anything else is a database failure and names the file.
package audit
