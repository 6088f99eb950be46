package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalidArgument: a value passed in is malformed or out of range;
	// the message names the field and the allowed values.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrClosed: the Store has been closed.
	ErrClosed = errors.New("audit store closed")
)

// busyTimeout is how long a write waits for another process (a second
// callctl, the sqlite3 shell) that holds the database's write lock.
const busyTimeout = 5 * time.Second

// Store is the audit trail and call records database. Its methods are safe
// for concurrent use. Open one per database file and Close it at shutdown.
//
// Records are written by one goroutine per Store that commits them in
// groups (see writer.go): concurrent RecordCall and RecordRequest calls
// share a transaction, and so an fsync, while each still returns only once
// its own record is committed.
type Store struct {
	path   string
	db     *sql.DB
	closed atomic.Bool

	// The INSERTs, prepared once in Open and closed by Close.
	insertCall, insertRequest *sql.Stmt

	// queue carries records to the writer goroutine; Close closes it
	// (holding queueMu, which senders hold for reading) and then waits for
	// writerDone, closed by the writer once the queue is drained.
	queueMu    sync.RWMutex
	queue      chan *pending
	writerDone chan struct{}

	// testHookBatch, when set (by tests, before the first record is
	// queued), is called by the writer with each batch's size before it
	// writes the batch.
	testHookBatch func(n int)
}

// Open opens the database at path, creating the file (mode 0600: the records
// hold phone numbers and client names) and its schema when missing, and
// migrating an older schema forward. The parent directory must exist.
// Errors name the path.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("audit: database path is empty; want a file path such as callctl.db: %w", ErrInvalidArgument)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	// Create the file ourselves so it gets 0600; SQLite gives the -wal and
	// -shm files the same mode as the database.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	// SQLite has one writer at a time. One connection serialises our writes
	// in Go instead of in SQLITE_BUSY retries, and keeps the per-connection
	// PRAGMAs of the DSN in force for the life of the Store. Reads are
	// bounded (at most maxLimit rows), so they hold it only briefly.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &Store{path: path, db: db}
	ctx, cancel := context.WithTimeout(context.Background(), 2*busyTimeout)
	defer cancel()
	if err := s.check(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if s.insertCall, err = db.PrepareContext(ctx, insertCallSQL); err == nil {
		s.insertRequest, err = db.PrepareContext(ctx, insertRequestSQL)
	}
	if err != nil {
		db.Close() // closes a statement already prepared, too
		return nil, fmt.Errorf("audit: open %s: prepare: %w", path, err)
	}
	s.queue = make(chan *pending, queueLen)
	s.writerDone = make(chan struct{})
	go s.run()
	return s, nil
}

// dsn is a file: URI for abs, so that any character in the path (even '?'
// or '#') reaches SQLite intact, with the PRAGMAs every connection runs.
func dsn(abs string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if !strings.HasPrefix(u.Path, "/") { // Windows: C:/x -> /C:/x
		u.Path = "/" + u.Path
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	// FULL: every commit fsyncs the WAL, so a record survives a power cut
	// as well as a killed process.
	q.Set("_synchronous", "FULL")
	// Transactions take the write lock at BEGIN rather than failing later
	// when a read lock cannot be upgraded.
	q.Set("_txlock", "immediate")
	return u.String() + "?" + q.Encode()
}

// check makes sure the connection opened and that SQLite really is in WAL
// mode: some file systems (network mounts) cannot do WAL, and then the file
// silently stays in rollback-journal mode.
func (s *Store) check(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal (is the file on a file system without shared memory?)", mode)
	}
	return nil
}

// Close closes the database. Records already returned from are on disk;
// records already queued for the writer when Close is called (their Record
// call waiting for the commit) are written, or fail, before Close returns,
// and their callers get the result; a Record call that has not queued its
// record yet gets ErrClosed and writes nothing.
// Close stops the writer goroutine, waiting for it, and checkpoints the WAL
// into the main file. Calls after Close return ErrClosed; a second Close
// returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// No sender is between its closed check and its send once we hold the
	// lock, and every later one sees closed.
	s.queueMu.Lock()
	close(s.queue)
	s.queueMu.Unlock()
	<-s.writerDone

	err := errors.Join(s.insertCall.Close(), s.insertRequest.Close(), s.db.Close())
	if err != nil {
		return fmt.Errorf("audit: close %s: %w", s.path, err)
	}
	return nil
}

// errorf wraps a database failure with the operation and the file.
func (s *Store) errorf(op string, err error) error {
	return fmt.Errorf("audit: %s: %s: %w", s.path, op, err)
}

func (s *Store) checkOpen(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("audit: %s: %w", op, ErrClosed)
	}
	return nil
}

// timeLayout is how times are stored: UTC, fixed width, nanoseconds.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// formatTime stores t; the zero time is NULL. Years outside 1..9999 would
// break the fixed width that makes the text sort, so they are refused.
func formatTime(field string, t time.Time) (sql.NullString, error) {
	if t.IsZero() {
		return sql.NullString{}, nil
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return sql.NullString{}, fmt.Errorf("audit: %s %v is outside years 1..9999: %w", field, t, ErrInvalidArgument)
	}
	return sql.NullString{String: t.Format(timeLayout), Valid: true}, nil
}

func parseTime(ns sql.NullString) (time.Time, error) {
	if !ns.Valid {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, ns.String)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
