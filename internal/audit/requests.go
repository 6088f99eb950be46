package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Request is one API request that touched a session.
type Request struct {
	// ID is assigned by RecordRequest; it only grows, and is ignored on input.
	ID int64 `json:"id"`
	// Time is when the request arrived; zero means now. Returned in UTC.
	Time time.Time `json:"time"`
	// Client is the authenticated client's name; empty when there was none.
	Client string `json:"client"`
	// Source is where the request came from (remote address).
	Source string `json:"source,omitempty"`
	// Operation is what was asked, e.g. "hold", "blindTransfer". Required.
	Operation string `json:"operation"`
	// Args are the operation's arguments, e.g. {"target": "1002"}.
	Args map[string]string `json:"args,omitempty"`
	// SessionID is the session the request was about.
	SessionID string `json:"sessionId,omitempty"`
	// Result is "ok" or "error".
	Result string `json:"result"`
	// Status is the HTTP status the request was answered with.
	Status int `json:"status"`
	// Error is the error message sent back, when Result is "error".
	Error string `json:"error,omitempty"`
	// Node is the cluster node whose database holds the record, set on
	// reads across a cluster's nodes; not stored.
	Node string `json:"node,omitempty"`
}

// Results a Request may have.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// RecordRequest appends r to the audit trail and returns its ID. When it
// returns without error the row is on disk (committed and fsynced, in a
// transaction it may share with records written concurrently): write it
// before answering the client, and a crash cannot lose a request that was
// answered.
//
// If ctx is done before the record is queued for writing, nothing is
// written. If ctx ends while RecordRequest waits for the commit, it returns
// ctx's error at once, but the record is already queued and will most
// likely still be written.
func (s *Store) RecordRequest(ctx context.Context, r Request) (int64, error) {
	const op = "record request"
	if err := s.checkOpen(op); err != nil {
		return 0, err
	}
	if r.Operation == "" {
		return 0, fmt.Errorf("audit: %s: Operation is empty: %w", op, ErrInvalidArgument)
	}
	if r.Result != ResultOK && r.Result != ResultError {
		return 0, fmt.Errorf("audit: %s: Result %q must be one of: %s, %s: %w", op, r.Result, ResultOK, ResultError, ErrInvalidArgument)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	t, err := formatTime("Request.Time", r.Time)
	if err != nil {
		return 0, err
	}
	args := "{}"
	if len(r.Args) > 0 {
		b, err := json.Marshal(r.Args)
		if err != nil { // cannot fail for map[string]string
			return 0, s.errorf(op, err)
		}
		args = string(b)
	}
	p := getPending(kindRequest)
	p.args = append(p.args, t.String, r.Client, r.Source, r.Operation, args, r.SessionID, r.Result, r.Status, r.Error)
	return s.write(ctx, op, p)
}

// Filter selects records; its zero value selects the newest DefaultLimit.
// Every field set must match.
type Filter struct {
	// SessionID, Client and Operation match exactly. For Calls, Client and
	// Operation select the calls on which such a request was recorded.
	SessionID, Client, Operation string
	// Since (inclusive) and Until (exclusive) bound the time: a request's
	// Time, a call's End (its Start while it has no End).
	Since, Until time.Time
	// Limit is the most records returned: 0 means DefaultLimit, more than
	// MaxLimit is cut to MaxLimit.
	Limit int
	// BeforeID pages Requests: only rows with ID < BeforeID (pass the last
	// ID of the previous page). Calls have no ID; page them with Until.
	BeforeID int64
}

// Limits on the records one query returns.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// where is a WHERE clause under construction.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit validates f's common fields and returns the row limit.
func (f Filter) limit(op string) (int, error) {
	switch {
	case f.Limit < 0:
		return 0, fmt.Errorf("audit: %s: Filter.Limit %d is negative; want 0 (default %d) to %d: %w", op, f.Limit, DefaultLimit, MaxLimit, ErrInvalidArgument)
	case f.BeforeID < 0:
		return 0, fmt.Errorf("audit: %s: Filter.BeforeID %d is negative; want 0 (no paging) or an ID: %w", op, f.BeforeID, ErrInvalidArgument)
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until):
		return 0, fmt.Errorf("audit: %s: Filter.Since %v is not before Filter.Until %v: %w", op, f.Since.UTC(), f.Until.UTC(), ErrInvalidArgument)
	case f.Limit == 0:
		return DefaultLimit, nil
	case f.Limit > MaxLimit:
		return MaxLimit, nil
	}
	return f.Limit, nil
}

// timeRange adds Since/Until conditions on column.
func (w *where) timeRange(column string, f Filter) error {
	if !f.Since.IsZero() {
		t, err := formatTime("Filter.Since", f.Since)
		if err != nil {
			return err
		}
		w.add(column+" >= ?", t.String)
	}
	if !f.Until.IsZero() {
		t, err := formatTime("Filter.Until", f.Until)
		if err != nil {
			return err
		}
		w.add(column+" < ?", t.String)
	}
	return nil
}

// Requests returns the requests f selects, newest (highest ID) first.
func (s *Store) Requests(ctx context.Context, f Filter) ([]Request, error) {
	const op = "read requests"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	limit, err := f.limit(op)
	if err != nil {
		return nil, err
	}
	var w where
	if f.SessionID != "" {
		w.add("session_id = ?", f.SessionID)
	}
	if f.Client != "" {
		w.add("client = ?", f.Client)
	}
	if f.Operation != "" {
		w.add("operation = ?", f.Operation)
	}
	if err := w.timeRange("time", f); err != nil {
		return nil, err
	}
	if f.BeforeID > 0 {
		w.add("id < ?", f.BeforeID)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, time, client, source, operation, args, session_id, result, status, error
		 FROM requests`+w.String()+` ORDER BY id DESC LIMIT ?`,
		append(w.args, limit)...)
	if err != nil {
		return nil, s.errorf(op, err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		var (
			r    Request
			t    sql.NullString
			args string
		)
		if err := rows.Scan(&r.ID, &t, &r.Client, &r.Source, &r.Operation, &args, &r.SessionID, &r.Result, &r.Status, &r.Error); err != nil {
			return nil, s.errorf(op, err)
		}
		if r.Time, err = parseTime(t); err != nil {
			return nil, s.errorf(op, fmt.Errorf("request %d: time: %w", r.ID, err))
		}
		if err := json.Unmarshal([]byte(args), &r.Args); err != nil {
			return nil, s.errorf(op, fmt.Errorf("request %d: args: %w", r.ID, err))
		}
		if len(r.Args) == 0 {
			r.Args = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf(op, err)
	}
	return out, nil
}
