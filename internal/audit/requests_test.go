package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func equalRequest(a, b Request) bool {
	return a.ID == b.ID && a.Time.Equal(b.Time) && a.Time.Location() == b.Time.Location() &&
		a.Client == b.Client && a.Source == b.Source && a.Operation == b.Operation &&
		maps.Equal(a.Args, b.Args) && (a.Args == nil) == (b.Args == nil) &&
		a.SessionID == b.SessionID && a.Result == b.Result && a.Status == b.Status && a.Error == b.Error
}

func TestRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Request
	}{
		{"hold that succeeded", Request{Time: at(0), Client: "alice", Source: "10.0.0.7:5123", Operation: "hold",
			SessionID: "s1", Result: ResultOK, Status: 200}},
		{"transfer with arguments", Request{Time: at(time.Second), Client: "bob", Source: "[::1]:40000", Operation: "blindTransfer",
			Args: map[string]string{"transferor": "1001", "target": "1003"}, SessionID: "s2", Result: ResultOK, Status: 202}},
		{"refused request with unicode and quotes", Request{Time: at(2 * time.Second), Client: "zoë", Source: "192.0.2.1:1",
			Operation: "sendDtmf", Args: map[string]string{"keys": `"*#'; DROP TABLE requests;--`}, SessionID: "s3",
			Result: ResultError, Status: 409, Error: `session is "closed"; want one of: talking, held`}},
		{"no client (unauthenticated)", Request{Time: at(3 * time.Second), Operation: "hangup", Result: ResultError, Status: 401,
			Error: "no token"}},
		{"nanosecond past UTC midnight, in UTC", Request{Time: time.Date(2030, 1, 1, 0, 0, 0, 1, time.UTC),
			Operation: "close", SessionID: "s4", Result: ResultOK, Status: 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			id, err := s.RecordRequest(ctx(t), tc.in)
			if err != nil {
				t.Fatalf("RecordRequest: %v", err)
			}
			if id <= 0 {
				t.Errorf("ID = %d, want > 0", id)
			}
			got, err := s.Requests(ctx(t), Filter{})
			if err != nil {
				t.Fatalf("Requests: %v", err)
			}
			want := tc.in
			want.ID = id
			want.Time = tc.in.Time.UTC()
			if len(got) != 1 || !equalRequest(got[0], want) {
				t.Errorf("Requests = %+v\nwant [%+v]", got, want)
			}
		})
	}
}

func TestRecordRequestWithZeroTimeUsesNow(t *testing.T) {
	s, _ := openTemp(t)
	before := time.Now()
	if _, err := s.RecordRequest(ctx(t), Request{Operation: "hold", Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got, err := s.Requests(ctx(t), Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Requests = %v, %v; want one", got, err)
	}
	if tm := got[0].Time; tm.Before(before.Round(0)) || tm.After(after.Round(0)) || tm.Location() != time.UTC {
		t.Errorf("Time = %v, want a UTC time between %v and %v", tm, before, after)
	}
}

func TestRecordRequestRefusesInvalidRequests(t *testing.T) {
	s, _ := openTemp(t)
	for _, tc := range []struct {
		name  string
		in    Request
		field string
	}{
		{"no operation", Request{Result: ResultOK}, "Operation"},
		{"no result", Request{Operation: "hold"}, "Result"},
		{"unknown result", Request{Operation: "hold", Result: "maybe"}, "Result"},
		{"year past 9999", Request{Operation: "hold", Result: ResultOK, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "Request.Time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.RecordRequest(ctx(t), tc.in)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("RecordRequest = %v, want ErrInvalidArgument", err)
			}
			if !containsWord(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
	if got, err := s.Requests(ctx(t), Filter{}); err != nil || len(got) != 0 {
		t.Errorf("after refusals Requests = %v, %v; want none stored", got, err)
	}
}

func TestRecordRequestWithCancelledContextStoresNothing(t *testing.T) {
	s, _ := openTemp(t)
	cctx, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := s.RecordRequest(cctx, Request{Operation: "hold", Result: ResultOK}); !errors.Is(err, context.Canceled) {
		t.Errorf("RecordRequest = %v, want context.Canceled", err)
	}
	if got, err := s.Requests(ctx(t), Filter{}); err != nil || len(got) != 0 {
		t.Errorf("Requests = %v, %v; want none stored", got, err)
	}
}

// seedRequests records the fixture the filter tests read: IDs 1..6.
//
//	id  time   client  operation      session
//	1   +0s    alice   hold           s1
//	2   +1s    alice   unhold         s1
//	3   +2s    bob     hold           s2
//	4   +3s    bob     blindTransfer  s1
//	5   +4s    carol   hold           s3
//	6   +5s    alice   hangup         s2
func seedRequests(t *testing.T, s *Store) {
	t.Helper()
	for i, r := range []struct{ client, op, session string }{
		{"alice", "hold", "s1"},
		{"alice", "unhold", "s1"},
		{"bob", "hold", "s2"},
		{"bob", "blindTransfer", "s1"},
		{"carol", "hold", "s3"},
		{"alice", "hangup", "s2"},
	} {
		id, err := s.RecordRequest(ctx(t), Request{Time: at(time.Duration(i) * time.Second), Client: r.client,
			Operation: r.op, SessionID: r.session, Result: ResultOK, Status: 200})
		if err != nil {
			t.Fatal(err)
		}
		if id != int64(i+1) {
			t.Fatalf("fixture row %d got ID %d", i+1, id)
		}
	}
}

func ids(rs []Request) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestRequestsFiltersNewestFirst(t *testing.T) {
	s, _ := openTemp(t)
	seedRequests(t, s)
	for _, tc := range []struct {
		name string
		f    Filter
		want []int64
	}{
		{"everything", Filter{}, []int64{6, 5, 4, 3, 2, 1}},
		{"by session", Filter{SessionID: "s1"}, []int64{4, 2, 1}},
		{"by client", Filter{Client: "alice"}, []int64{6, 2, 1}},
		{"by operation", Filter{Operation: "hold"}, []int64{5, 3, 1}},
		{"client and session", Filter{Client: "bob", SessionID: "s1"}, []int64{4}},
		{"since is inclusive", Filter{Since: at(3 * time.Second)}, []int64{6, 5, 4}},
		{"until is exclusive", Filter{Until: at(2 * time.Second)}, []int64{2, 1}},
		{"since and until given in another zone", Filter{Since: at(time.Second).UTC(), Until: at(4 * time.Second).In(time.FixedZone("W", -5*3600))}, []int64{4, 3, 2}},
		{"one nanosecond after a request excludes it", Filter{Since: at(5*time.Second + 1)}, []int64{}},
		{"limit", Filter{Limit: 2}, []int64{6, 5}},
		{"before ID", Filter{BeforeID: 4}, []int64{3, 2, 1}},
		{"before ID with filter and limit", Filter{Operation: "hold", BeforeID: 5, Limit: 1}, []int64{3}},
		{"nothing matches", Filter{Client: "mallory"}, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Requests(ctx(t), tc.f)
			if err != nil {
				t.Fatalf("Requests: %v", err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("Requests(%+v) IDs = %v, want %v", tc.f, ids(got), tc.want)
			}
		})
	}
}

// bulkRequests inserts n requests in one transaction, far faster than n
// fsynced RecordRequest calls, for tests about counts.
func bulkRequests(t *testing.T, s *Store, n int) {
	t.Helper()
	tx, err := s.db.BeginTx(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		if _, err := tx.ExecContext(ctx(t), `INSERT INTO requests (time, client, source, operation, args, session_id, result, status, error)
			VALUES (?, 'alice', '', 'hold', '{}', ?, 'ok', 200, '')`,
			at(time.Duration(i)*time.Millisecond).UTC().Format(timeLayout), fmt.Sprintf("s%d", i%7)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestRequestsPagingWithBeforeIDVisitsEveryRowOnce(t *testing.T) {
	s, _ := openTemp(t)
	const n = 250
	bulkRequests(t, s, n)
	var (
		seen  []int64
		pages int
		f     = Filter{Limit: 100}
	)
	for {
		page, err := s.Requests(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		seen = append(seen, ids(page)...)
		f.BeforeID = page[len(page)-1].ID
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3 (100, 100, 50)", pages)
	}
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(n - i)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("paged IDs = %v…, want %d..1 each once", seen[:min(len(seen), 10)], n)
	}
}

func TestRequestsLimitDefaultsTo100AndIsCappedAt1000(t *testing.T) {
	s, _ := openTemp(t)
	bulkRequests(t, s, MaxLimit+5)
	for _, tc := range []struct {
		limit, want int
	}{
		{0, DefaultLimit},
		{1, 1},
		{MaxLimit, MaxLimit},
		{MaxLimit + 1, MaxLimit},
		{1 << 30, MaxLimit},
	} {
		got, err := s.Requests(ctx(t), Filter{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("Limit %d returned %d rows, want %d", tc.limit, len(got), tc.want)
		}
	}
}

func TestFiltersRefuseInvalidValues(t *testing.T) {
	s, _ := openTemp(t)
	for _, tc := range []struct {
		name  string
		f     Filter
		field string
		calls bool // whether Calls refuses it too
	}{
		{"negative limit", Filter{Limit: -1}, "Filter.Limit", true},
		{"negative before ID", Filter{BeforeID: -3}, "Filter.BeforeID", true},
		{"since after until", Filter{Since: at(time.Hour), Until: at(0)}, "Filter.Since", true},
		{"since equal to until", Filter{Since: at(0), Until: at(0)}, "Filter.Until", true},
		{"since past year 9999", Filter{Since: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "Filter.Since", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Requests(ctx(t), tc.f)
			if !errors.Is(err, ErrInvalidArgument) || !containsWord(err.Error(), tc.field) {
				t.Errorf("Requests(%+v) = %v, want ErrInvalidArgument naming %s", tc.f, err, tc.field)
			}
			_, err = s.Calls(ctx(t), tc.f)
			if !errors.Is(err, ErrInvalidArgument) || !containsWord(err.Error(), tc.field) {
				t.Errorf("Calls(%+v) = %v, want ErrInvalidArgument naming %s", tc.f, err, tc.field)
			}
		})
	}
}

func TestConcurrentRecordRequestsGetDistinctIDs(t *testing.T) {
	s, _ := openTemp(t)
	const workers, each = 8, 10
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  = map[int64]string{}
		errs = make(chan error, workers*each)
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				session := fmt.Sprintf("w%d-%d", w, i)
				id, err := s.RecordRequest(ctx(t), Request{Operation: "hold", SessionID: session, Result: ResultOK})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got[id] = session
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(got) != workers*each {
		t.Errorf("%d distinct IDs, want %d", len(got), workers*each)
	}
	rows, err := s.Requests(ctx(t), Filter{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if got[r.ID] != r.SessionID {
			t.Errorf("row %d has session %q, RecordRequest returned that ID for %q", r.ID, r.SessionID, got[r.ID])
		}
	}
	if len(rows) != workers*each {
		t.Errorf("%d rows stored, want %d", len(rows), workers*each)
	}
}

// containsWord reports whether s mentions name.
func containsWord(s, name string) bool {
	return name != "" && strings.Contains(s, name)
}
