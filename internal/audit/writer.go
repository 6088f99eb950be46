package audit

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// Writes go through one goroutine per Store, the writer, which commits them
// in groups: it takes what is queued when it gets to the queue (at most
// maxBatch records), writes it in one transaction, and then tells each
// record's caller. Records that arrive while a batch is being fsynced wait
// in the queue for the next one, so under load many records share one
// commit (one fsync). A lone record is written at once; while records keep
// coming faster than commits (the last batch held more than one and was
// committed less than busyWithin ago) the writer gathers for linger (or
// until maxBatch) before committing, since a commit's cost (WAL frames, fsync) hardly
// depends on how many records it holds. Under load a record's caller thus
// waits up to linger longer; in exchange commits stay at most one per linger.
const (
	// maxBatch is the most records one transaction holds.
	maxBatch = 256
	// linger is the longest a record waits for others to share its commit,
	// and busyWithin how recent the last commit must be for that.
	linger     = 5 * time.Millisecond
	busyWithin = 50 * time.Millisecond
	// queueLen is how many records may wait for the writer before callers
	// block on the queue.
	queueLen = 4 * maxBatch
)

// The INSERTs, prepared once per Store in Open.
const (
	insertCallSQL = `INSERT INTO calls (session_id, caller, caller_name, callee, callee_name, dialled,
			start_time, answer_time, end_time, sort_time, state, end_reason, operations)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (session_id) DO UPDATE SET
			caller = excluded.caller, caller_name = excluded.caller_name,
			callee = excluded.callee, callee_name = excluded.callee_name,
			dialled = excluded.dialled, start_time = excluded.start_time,
			answer_time = excluded.answer_time, end_time = excluded.end_time,
			sort_time = excluded.sort_time, state = excluded.state,
			end_reason = excluded.end_reason, operations = excluded.operations`
	insertRequestSQL = `INSERT INTO requests (time, client, source, operation, args, session_id, result, status, error)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// recordKind says which table a pending record goes to.
type recordKind uint8

const (
	kindCall recordKind = iota
	kindRequest
)

// maxArgs is the most parameters an INSERT above takes.
const maxArgs = 13

// pending is one record on its way to the database. The caller fills kind
// and args and queues it; the writer sets id and err and then signals done.
// After done the caller owns it again and returns it to pendingPool; a
// caller that stops waiting (its context ended) leaves it to the garbage
// collector instead, since the writer may still be about to signal.
type pending struct {
	kind   recordKind
	args   []any
	argBuf [maxArgs]any
	id     int64 // the row id, for requests
	err    error
	done   chan struct{} // buffered 1: the writer never blocks on it
}

var pendingPool = sync.Pool{New: func() any {
	p := &pending{done: make(chan struct{}, 1)}
	p.args = p.argBuf[:0]
	return p
}}

func getPending(kind recordKind) *pending {
	p := pendingPool.Get().(*pending)
	p.kind = kind
	return p
}

// putPending recycles p; call it only after receiving from p.done (or if p
// was never queued).
func putPending(p *pending) {
	clear(p.argBuf[:]) // do not keep the record's strings alive
	p.args, p.id, p.err = p.argBuf[:0], 0, nil
	pendingPool.Put(p)
}

// write queues p and waits until the writer has committed it (or failed
// to). It returns the row id for a request. op names the operation in
// errors. On an error p has been recycled or abandoned; on success too.
//
// If ctx is done before p is queued, nothing is written. If it ends while
// waiting for the commit, write returns at once with ctx's error, but the
// record is already queued and will most likely still be written: an error
// from write does not prove that the record is absent.
func (s *Store) write(ctx context.Context, op string, p *pending) (int64, error) {
	if err := ctx.Err(); err != nil {
		putPending(p)
		return 0, fmt.Errorf("audit: %s: %w", op, err)
	}
	// The read lock keeps Close from closing the queue while we send on it.
	s.queueMu.RLock()
	if s.closed.Load() {
		s.queueMu.RUnlock()
		putPending(p)
		return 0, fmt.Errorf("audit: %s: %w", op, ErrClosed)
	}
	select {
	case s.queue <- p:
		s.queueMu.RUnlock()
	case <-ctx.Done():
		s.queueMu.RUnlock()
		putPending(p)
		return 0, fmt.Errorf("audit: %s: %w", op, ctx.Err())
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// The writer still owns p: leave it to the garbage collector.
		return 0, fmt.Errorf("audit: %s: gave up waiting for the commit, the record may still be written: %w", op, ctx.Err())
	}
	id, err := p.id, p.err
	putPending(p)
	if err != nil {
		return 0, s.errorf(op, err)
	}
	return id, nil
}

// run is the writer goroutine. It exits when Close has closed the queue
// and every record queued before that has been written.
func (s *Store) run() {
	defer close(s.writerDone)
	batch := make([]*pending, 0, maxBatch)
	gather := time.NewTimer(linger)
	gather.Stop()
	var lastCommit time.Time
	lastBatch := 0
	for p := range s.queue {
		batch = append(batch, p)
		busy := lastBatch > 1 && time.Since(lastCommit) < busyWithin
		if busy {
			gather.Reset(linger)
		}
	fill:
		for len(batch) < maxBatch {
			if !busy {
				select {
				case p, ok := <-s.queue:
					if !ok {
						break fill
					}
					batch = append(batch, p)
				default:
					break fill
				}
				continue
			}
			select {
			case p, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			case <-gather.C:
				busy = false
			}
		}
		gather.Stop()
		if s.testHookBatch != nil {
			s.testHookBatch(len(batch))
		}
		lastBatch = len(batch)
		s.writeBatch(batch)
		lastCommit = time.Now()
		clear(batch) // the callers own their records again
		batch = batch[:0]
	}
}

// writeBatch writes batch in one transaction and signals each record's
// caller. If a commit fails, every record of the batch gets the error. If
// one record's INSERT fails, that record alone gets its error and the
// transaction is rolled back and tried again without it, so one bad record
// does not fail the others.
func (s *Store) writeBatch(batch []*pending) {
	for len(batch) > 0 {
		failed, err := s.tryBatch(batch)
		if failed >= 0 {
			p := batch[failed]
			p.id, p.err = 0, err
			p.done <- struct{}{}
			batch = append(batch[:failed], batch[failed+1:]...)
			continue
		}
		for _, p := range batch {
			if err != nil {
				p.id, p.err = 0, err
			}
			p.done <- struct{}{}
		}
		return
	}
}

// tryBatch runs batch's INSERTs in one transaction and commits it, setting
// each request's id. When an INSERT fails it rolls back and returns that
// record's index and error; otherwise it returns -1 and the error of BEGIN
// or COMMIT, if any.
func (s *Store) tryBatch(batch []*pending) (failed int, err error) {
	// No caller's context: the records are queued, so they are written
	// whatever happens to the callers. BEGIN is IMMEDIATE (see dsn), and
	// waits at most busyTimeout for another process's write lock.
	ctx := context.Background()
	if len(batch) == 1 {
		// One record (no load): its INSERT alone, in autocommit, is one
		// transaction, fsynced like any other, without BEGIN and COMMIT.
		// A writing statement takes the write lock when it starts.
		p := batch[0]
		res, err := s.prepared(p.kind).ExecContext(ctx, p.args...)
		if err == nil && p.kind == kindRequest {
			p.id, err = res.LastInsertId()
		}
		if err != nil {
			return 0, err
		}
		return -1, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return -1, err
	}
	// The statements prepared in Open, bound to this transaction: the
	// connection's compiled statement is reused, not prepared again.
	var call, req *sql.Stmt
	for i, p := range batch {
		stmt := &req
		if p.kind == kindCall {
			stmt = &call
		}
		if *stmt == nil {
			*stmt = tx.StmtContext(ctx, s.prepared(p.kind))
		}
		res, err := (*stmt).ExecContext(ctx, p.args...)
		if err == nil && p.kind == kindRequest {
			p.id, err = res.LastInsertId()
		}
		if err != nil {
			tx.Rollback() //nolint:errcheck // the error that matters is err
			return i, err
		}
	}
	return -1, tx.Commit()
}

// prepared returns the Store's INSERT for kind.
func (s *Store) prepared(kind recordKind) *sql.Stmt {
	if kind == kindCall {
		return s.insertCall
	}
	return s.insertRequest
}
