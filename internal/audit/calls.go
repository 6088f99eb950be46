package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Call is the record of one session: its parties, times, how it ended and
// what was done to it.
type Call struct {
	// SessionID identifies the session; required, and the key RecordCall
	// upserts by.
	SessionID string `json:"sessionId"`
	// Caller and Callee are numbers; the Names are display names. Dialled
	// is the number the caller dialled.
	Caller     string `json:"caller"`
	CallerName string `json:"callerName,omitempty"`
	Callee     string `json:"callee"`
	CalleeName string `json:"calleeName,omitempty"`
	Dialled    string `json:"dialled"`
	// Start, Answer and End are when the session began, was answered and
	// ended; zero when it has not (yet). Returned in UTC.
	Start  time.Time `json:"start"`
	Answer time.Time `json:"answer,omitzero"`
	End    time.Time `json:"end,omitzero"`
	// State is the session's last state.
	State string `json:"state"`
	// EndReason says why it ended, e.g. "caller hung up".
	EndReason string `json:"endReason,omitempty"`
	// Operations are the operations applied, in order, e.g.
	// "hold ok".
	Operations []string `json:"operations,omitempty"`
	// Node is the cluster node whose database holds the record, set on
	// reads across a cluster's nodes; not stored.
	Node string `json:"node,omitempty"`
}

// RecordCall stores c as the record of session c.SessionID, replacing any
// earlier record of that session (so it may be called as the call
// progresses and once more when it ends). Durable when it returns without
// error: the record is committed and fsynced (in a transaction it may share
// with records written concurrently).
//
// If ctx is done before the record is queued for writing, nothing is
// written. If ctx ends while RecordCall waits for the commit, it returns
// ctx's error at once, but the record is already queued and will most likely
// still be written.
func (s *Store) RecordCall(ctx context.Context, c Call) error {
	const op = "record call"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	if c.SessionID == "" {
		return fmt.Errorf("audit: %s: SessionID is empty: %w", op, ErrInvalidArgument)
	}
	start, err := formatTime("Call.Start", c.Start)
	if err != nil {
		return err
	}
	answer, err := formatTime("Call.Answer", c.Answer)
	if err != nil {
		return err
	}
	end, err := formatTime("Call.End", c.End)
	if err != nil {
		return err
	}
	sortTime := end.String
	if !end.Valid {
		sortTime = start.String // "" when both are unset
	}
	ops := "[]"
	if len(c.Operations) > 0 {
		b, err := json.Marshal(c.Operations)
		if err != nil { // cannot fail for []string
			return s.errorf(op, err)
		}
		ops = string(b)
	}
	p := getPending(kindCall)
	p.args = append(p.args, c.SessionID, c.Caller, c.CallerName, c.Callee, c.CalleeName, c.Dialled,
		start, answer, end, sortTime, c.State, c.EndReason, ops)
	_, err = s.write(ctx, op, p)
	return err
}

// Calls returns the calls f selects, newest first: by End, or Start for a
// call that has not ended, then by Start. Filter.BeforeID does not apply
// (calls have no ID): to page, pass the last call's End (or Start) as Until.
func (s *Store) Calls(ctx context.Context, f Filter) ([]Call, error) {
	const op = "read calls"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	if f.BeforeID != 0 {
		return nil, fmt.Errorf("audit: %s: Filter.BeforeID pages requests only; page calls with Filter.Until: %w", op, ErrInvalidArgument)
	}
	limit, err := f.limit(op)
	if err != nil {
		return nil, err
	}
	var w where
	if f.SessionID != "" {
		w.add("c.session_id = ?", f.SessionID)
	}
	if f.Client != "" {
		w.add("EXISTS (SELECT 1 FROM requests r WHERE r.session_id = c.session_id AND r.client = ?)", f.Client)
	}
	if f.Operation != "" {
		w.add("EXISTS (SELECT 1 FROM requests r WHERE r.session_id = c.session_id AND r.operation = ?)", f.Operation)
	}
	if err := w.timeRange("c.sort_time", f); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT c.session_id, c.caller, c.caller_name, c.callee, c.callee_name, c.dialled,
			c.start_time, c.answer_time, c.end_time, c.state, c.end_reason, c.operations
		 FROM calls c`+w.String()+`
		 ORDER BY c.sort_time DESC, c.start_time DESC, c.session_id DESC LIMIT ?`,
		append(w.args, limit)...)
	if err != nil {
		return nil, s.errorf(op, err)
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		var (
			c                  Call
			start, answer, end sql.NullString
			ops                string
		)
		if err := rows.Scan(&c.SessionID, &c.Caller, &c.CallerName, &c.Callee, &c.CalleeName, &c.Dialled,
			&start, &answer, &end, &c.State, &c.EndReason, &ops); err != nil {
			return nil, s.errorf(op, err)
		}
		for _, p := range []struct {
			dst *time.Time
			src sql.NullString
		}{{&c.Start, start}, {&c.Answer, answer}, {&c.End, end}} {
			if *p.dst, err = parseTime(p.src); err != nil {
				return nil, s.errorf(op, fmt.Errorf("call %s: time: %w", c.SessionID, err))
			}
		}
		if err := json.Unmarshal([]byte(ops), &c.Operations); err != nil {
			return nil, s.errorf(op, fmt.Errorf("call %s: operations: %w", c.SessionID, err))
		}
		if len(c.Operations) == 0 {
			c.Operations = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf(op, err)
	}
	return out, nil
}
