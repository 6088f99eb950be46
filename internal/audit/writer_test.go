package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// countRows returns the number of rows in table.
func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(ctx(t), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// holdConnection takes the Store's only database connection, so that the
// writer blocks at its next BEGIN until release is called.
func holdConnection(t *testing.T, s *Store) (release func()) {
	t.Helper()
	conn, err := s.db.Conn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { conn.Close() }) }
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// batchSizes records the writer's batch sizes, in order, and sends each on
// the returned channel too (which must be drained or large enough).
func batchSizes(s *Store, buffer int) (<-chan int, func() []int) {
	ch := make(chan int, buffer)
	var mu sync.Mutex
	var sizes []int
	s.testHookBatch = func(n int) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		ch <- n
	}
	return ch, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), sizes...)
	}
}

func TestConcurrentRecordsAllLand(t *testing.T) {
	s, _ := openTemp(t)
	const goroutines, each = 32, 20
	var wg sync.WaitGroup
	ids := make(chan int64, goroutines*each)
	errs := make(chan error, 2*goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				c := Call{SessionID: fmt.Sprintf("g%d-c%d", g, i), Caller: "1001", Callee: "1002",
					Start: at(time.Duration(i) * time.Second), State: "closed"}
				if err := s.RecordCall(ctx(t), c); err != nil {
					errs <- err
				}
				id, err := s.RecordRequest(ctx(t), Request{Client: "alice", Operation: "hold",
					SessionID: c.SessionID, Result: ResultOK, Status: 200})
				if err != nil {
					errs <- err
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Errorf("record: %v", err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		if id <= 0 || seen[id] {
			t.Errorf("RecordRequest returned ID %d: want distinct positive IDs", id)
		}
		seen[id] = true
	}
	if n := countRows(t, s, "calls"); n != goroutines*each {
		t.Errorf("calls rows = %d, want %d", n, goroutines*each)
	}
	if n := countRows(t, s, "requests"); n != goroutines*each {
		t.Errorf("requests rows = %d, want %d", n, goroutines*each)
	}
}

func TestRecordIsReadableAsSoonAsItReturns(t *testing.T) {
	s, _ := openTemp(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				c := Call{SessionID: fmt.Sprintf("g%d-c%d", g, i), Caller: "1001", Start: at(0), State: "ringing"}
				if err := s.RecordCall(ctx(t), c); err != nil {
					t.Errorf("RecordCall: %v", err)
					return
				}
				calls, err := s.Calls(ctx(t), Filter{SessionID: c.SessionID})
				if err != nil || len(calls) != 1 || calls[0].State != "ringing" {
					t.Errorf("Calls(%s) right after RecordCall = %+v, %v; want the record", c.SessionID, calls, err)
				}
				id, err := s.RecordRequest(ctx(t), Request{Operation: "hold", SessionID: c.SessionID, Result: ResultOK})
				if err != nil {
					t.Errorf("RecordRequest: %v", err)
					return
				}
				reqs, err := s.Requests(ctx(t), Filter{SessionID: c.SessionID, BeforeID: id + 1, Limit: 1})
				if err != nil || len(reqs) != 1 || reqs[0].ID != id {
					t.Errorf("Requests right after RecordRequest returned %d = %+v, %v; want it", id, reqs, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestRecordsQueuedTogetherShareACommit holds the writer at BEGIN while
// records queue up: they are then written as one batch.
func TestRecordsQueuedTogetherShareACommit(t *testing.T) {
	s, _ := openTemp(t)
	batches, sizes := batchSizes(s, 16)
	release := holdConnection(t, s)

	// The first record is taken alone; the writer then waits for the
	// connection while the others queue.
	first := make(chan error, 1)
	go func() { first <- s.RecordCall(context.Background(), Call{SessionID: "first"}) }()
	if n := <-batches; n != 1 {
		t.Fatalf("first batch has %d records, want 1", n)
	}
	const queued = 50
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			_, err := s.RecordRequest(context.Background(), Request{Operation: "hold", SessionID: fmt.Sprint(i), Result: ResultOK})
			errs <- err
		}()
	}
	waitFor(t, "the records to queue", func() bool { return len(s.queue) == queued })
	release()
	if err := <-first; err != nil {
		t.Errorf("first RecordCall: %v", err)
	}
	for range queued {
		if err := <-errs; err != nil {
			t.Errorf("RecordRequest: %v", err)
		}
	}
	if got := sizes(); len(got) != 2 || got[1] != queued {
		t.Errorf("batch sizes = %v, want [1 %d]", got, queued)
	}
	if n := countRows(t, s, "requests"); n != queued {
		t.Errorf("requests rows = %d, want %d", n, queued)
	}
}

// TestCloseWritesQueuedRecordsAndWaits closes the Store while records are
// queued behind a writer held at BEGIN: Close must write them, and return
// only when they are written and the writer has exited.
func TestCloseWritesQueuedRecordsAndWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	batches, _ := batchSizes(s, 16)
	release := holdConnection(t, s)

	const n = 20
	errs := make(chan error, n)
	record := func(i int) {
		errs <- s.RecordCall(context.Background(), Call{SessionID: fmt.Sprint("s", i), State: "closed"})
	}
	go record(0)
	<-batches // the writer holds record 0 and waits for the connection
	for i := 1; i < n; i++ {
		go record(i)
	}
	waitFor(t, "the records to queue", func() bool { return len(s.queue) == n-1 })

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to start", s.closed.Load)
	if err := s.RecordCall(ctx(t), Call{SessionID: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordCall while closing = %v, want ErrClosed", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while records were still waiting to be written", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("RecordCall queued before Close: %v", err)
		}
	}
	goleak.VerifyNone(t) // the writer has exited

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := countRows(t, s, "calls"); got != n {
		t.Errorf("calls after Close and reopen = %d, want %d", got, n)
	}
}

func TestRecordHonoursContext(t *testing.T) {
	s, _ := openTemp(t)

	// Done before the call: nothing is written.
	done, cancel := context.WithCancel(ctx(t))
	cancel()
	if err := s.RecordCall(done, Call{SessionID: "cancelled"}); !errors.Is(err, context.Canceled) {
		t.Errorf("RecordCall(cancelled context) = %v, want context.Canceled", err)
	}
	if _, err := s.RecordRequest(done, Request{Operation: "hold", Result: ResultOK}); !errors.Is(err, context.Canceled) {
		t.Errorf("RecordRequest(cancelled context) = %v, want context.Canceled", err)
	}

	// Ending while waiting for the commit: the call returns at once, and the
	// record, already queued, is still written.
	release := holdConnection(t, s)
	short, cancel := context.WithTimeout(ctx(t), 20*time.Millisecond)
	defer cancel()
	err := s.RecordCall(short, Call{SessionID: "timed out", State: "closed"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "may still be written") {
		t.Errorf("RecordCall with a writer held = %v, want context.DeadlineExceeded saying it may still be written", err)
	}
	release()
	if err := s.RecordCall(ctx(t), Call{SessionID: "after"}); err != nil { // queued behind it
		t.Fatal(err)
	}
	got, err := s.Calls(ctx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := sessionIDs(got); len(ids) != 2 || !strings.Contains(strings.Join(ids, ","), "timed out") {
		t.Errorf("calls = %v, want the timed-out record and the later one (not the cancelled one)", ids)
	}
	if n := countRows(t, s, "requests"); n != 0 {
		t.Errorf("requests rows = %d, want 0", n)
	}
}

// TestBadRecordFailsAlone puts a record the database refuses in a batch
// with good ones: it gets the error, the others are written.
func TestBadRecordFailsAlone(t *testing.T) {
	s, path := openTemp(t)
	batches, sizes := batchSizes(s, 16)
	release := holdConnection(t, s)

	first := make(chan error, 1)
	go func() { first <- s.RecordCall(context.Background(), Call{SessionID: "first"}) }()
	<-batches

	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	go func() {
		_, err := s.RecordRequest(context.Background(), Request{Operation: "hold", SessionID: "good", Result: ResultOK})
		results <- result{"good request", err}
	}()
	go func() {
		err := s.RecordCall(context.Background(), Call{SessionID: "good call"})
		results <- result{"good call", err}
	}()
	go func() {
		// Past RecordRequest's checks: the table's CHECK on result refuses it.
		p := getPending(kindRequest)
		p.args = append(p.args, "2025-01-01T00:00:00.000000000Z", "", "", "hold", "{}", "bad", "maybe", 200, "")
		_, err := s.write(context.Background(), "record request", p)
		results <- result{"bad request", err}
	}()
	waitFor(t, "the records to queue", func() bool { return len(s.queue) == 3 })
	release()
	if err := <-first; err != nil {
		t.Errorf("first: %v", err)
	}
	for range 3 {
		r := <-results
		switch {
		case r.name == "bad request" && (r.err == nil || !strings.Contains(r.err.Error(), path) || !strings.Contains(r.err.Error(), "CHECK")):
			t.Errorf("bad request = %v, want a CHECK constraint error naming %s", r.err, path)
		case r.name != "bad request" && r.err != nil:
			t.Errorf("%s in a batch with a bad record: %v", r.name, r.err)
		}
	}
	if got := sizes(); len(got) != 2 || got[1] != 3 {
		t.Errorf("batch sizes = %v, want [1 3]", got)
	}
	reqs, err := s.Requests(ctx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].SessionID != "good" {
		t.Errorf("requests = %+v, want only the good one", reqs)
	}
	if n := countRows(t, s, "calls"); n != 2 {
		t.Errorf("calls rows = %d, want 2", n)
	}
}
