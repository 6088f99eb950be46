package audit

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] moves the schema from user_version i to i+1. Append new
// migrations; never edit one that has shipped, since databases in the field
// already ran it.
//
// Times are TEXT in timeLayout (UTC, nine fractional digits): fixed width, so
// comparison and ORDER BY on the text are chronological, and the file reads
// plainly in the sqlite3 shell. A zero time is NULL.
var migrations = [][]string{
	// 1: requests and calls.
	{
		`CREATE TABLE requests (
			id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so paging by id is stable
			time       TEXT    NOT NULL,
			client     TEXT    NOT NULL,
			source     TEXT    NOT NULL,
			operation  TEXT    NOT NULL,
			args       TEXT    NOT NULL, -- JSON object of strings
			session_id TEXT    NOT NULL,
			result     TEXT    NOT NULL CHECK (result IN ('ok', 'error')),
			status     INTEGER NOT NULL,
			error      TEXT    NOT NULL
		)`,
		`CREATE INDEX requests_time ON requests (time)`,
		`CREATE INDEX requests_session ON requests (session_id, id)`,
		`CREATE INDEX requests_client ON requests (client, id)`,
		`CREATE TABLE calls (
			session_id  TEXT PRIMARY KEY,
			caller      TEXT NOT NULL,
			caller_name TEXT NOT NULL,
			callee      TEXT NOT NULL,
			callee_name TEXT NOT NULL,
			dialled     TEXT NOT NULL,
			start_time  TEXT,
			answer_time TEXT,
			end_time    TEXT,
			sort_time   TEXT NOT NULL, -- end_time, else start_time, else '': the order Calls returns
			state       TEXT NOT NULL,
			end_reason  TEXT NOT NULL,
			operations  TEXT NOT NULL  -- JSON array of strings
		)`,
		`CREATE INDEX calls_sort ON calls (sort_time, start_time)`,
		`CREATE INDEX calls_start ON calls (start_time)`,
	},
}

// migrate brings the database up to len(migrations) in one IMMEDIATE
// transaction (the DSN sets _txlock=immediate), so two processes opening a
// new file at once cannot both create the tables.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this callctl knows (up to %d); refusing to use it", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for v := version; v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	return tx.Commit()
}
