package audit

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func equalCall(a, b Call) bool {
	sameTime := func(x, y time.Time) bool { return x.Equal(y) && x.Location() == y.Location() }
	return a.SessionID == b.SessionID && a.Caller == b.Caller && a.CallerName == b.CallerName &&
		a.Callee == b.Callee && a.CalleeName == b.CalleeName && a.Dialled == b.Dialled &&
		sameTime(a.Start, b.Start) && sameTime(a.Answer, b.Answer) && sameTime(a.End, b.End) &&
		a.State == b.State && a.EndReason == b.EndReason &&
		slices.Equal(a.Operations, b.Operations) && (a.Operations == nil) == (b.Operations == nil)
}

// utcCall is c as Calls returns it: times in UTC, zero times zero.
func utcCall(c Call) Call {
	for _, t := range []*time.Time{&c.Start, &c.Answer, &c.End} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return c
}

func TestCallRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Call
	}{
		{"answered, held and hung up", Call{SessionID: "s1", Caller: "1001", CallerName: "Alice", Callee: "1002",
			CalleeName: "Bob", Dialled: "1002", Start: at(0), Answer: at(3 * time.Second), End: at(95 * time.Second),
			State: "closed", EndReason: "callee hung up",
			Operations: []string{"hold by alice ok", "unhold by alice ok", "sendDtmf by bob error: wrong state"}}},
		{"never answered", Call{SessionID: "s2", Caller: "1001", Callee: "1003", Dialled: "03", Start: at(0),
			End: at(20 * time.Second), State: "closed", EndReason: "no answer"}},
		{"still ringing: no answer and no end", Call{SessionID: "s3", Caller: "+44 20 7946 0958", CallerName: "Zoë \"Z\"",
			Callee: "1002", Start: at(0), State: "ringing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			if err := s.RecordCall(ctx(t), tc.in); err != nil {
				t.Fatalf("RecordCall: %v", err)
			}
			got, err := s.Calls(ctx(t), Filter{})
			if err != nil {
				t.Fatalf("Calls: %v", err)
			}
			want := utcCall(tc.in)
			if len(got) != 1 || !equalCall(got[0], want) {
				t.Errorf("Calls = %+v\nwant [%+v]", got, want)
			}
		})
	}
}

func TestRecordCallUpsertsBySessionID(t *testing.T) {
	s, _ := openTemp(t)
	ringing := Call{SessionID: "s1", Caller: "1001", Callee: "1002", Dialled: "1002", Start: at(0), State: "ringing"}
	talking := ringing
	talking.Answer, talking.State = at(2*time.Second), "talking"
	talking.Operations = []string{"hold by alice ok"}
	ended := talking
	ended.End, ended.State, ended.EndReason = at(60*time.Second), "closed", "caller hung up"
	ended.Operations = []string{"hold by alice ok", "unhold by alice ok"}
	other := Call{SessionID: "s2", Caller: "1005", Callee: "1006", Start: at(-time.Hour), End: at(-time.Minute), State: "closed"}

	for _, c := range []Call{ringing, other, talking, ended} {
		if err := s.RecordCall(ctx(t), c); err != nil {
			t.Fatalf("RecordCall(%s, %s): %v", c.SessionID, c.State, err)
		}
	}
	got, err := s.Calls(ctx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Call{utcCall(ended), utcCall(other)}
	if len(got) != len(want) {
		t.Fatalf("Calls = %+v, want the 2 latest records %+v", got, want)
	}
	for i := range want {
		if !equalCall(got[i], want[i]) {
			t.Errorf("Calls[%d] = %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// A later record replaces every field, including clearing ones now empty.
	cleared := Call{SessionID: "s1", State: "closed"}
	if err := s.RecordCall(ctx(t), cleared); err != nil {
		t.Fatal(err)
	}
	got, err = s.Calls(ctx(t), Filter{SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !equalCall(got[0], cleared) {
		t.Errorf("after replacing with %+v, Calls = %+v", cleared, got)
	}
}

func TestRecordCallRefusesInvalidCalls(t *testing.T) {
	s, _ := openTemp(t)
	for _, tc := range []struct {
		name  string
		in    Call
		field string
	}{
		{"no session ID", Call{Caller: "1001", State: "closed"}, "SessionID"},
		{"end past year 9999", Call{SessionID: "s1", End: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}, "Call.End"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.RecordCall(ctx(t), tc.in)
			if !errors.Is(err, ErrInvalidArgument) || !containsWord(err.Error(), tc.field) {
				t.Errorf("RecordCall = %v, want ErrInvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

func sessionIDs(cs []Call) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.SessionID)
	}
	return out
}

func TestCallsFiltersNewestFirstByEndThenStart(t *testing.T) {
	s, _ := openTemp(t)
	for _, c := range []Call{
		{SessionID: "a", Start: at(0), End: at(10 * time.Second)},
		{SessionID: "b", Start: at(5 * time.Second), End: at(30 * time.Second)},
		// c and d end at the same instant: the later start comes first.
		{SessionID: "c", Start: at(1 * time.Second), End: at(20 * time.Second)},
		{SessionID: "d", Start: at(2 * time.Second), End: at(20 * time.Second)},
		// e has not ended: it sorts by its start.
		{SessionID: "e", Start: at(25 * time.Second)},
	} {
		if err := s.RecordCall(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	// Requests link clients and operations to calls.
	for _, r := range []Request{
		{Client: "alice", Operation: "hold", SessionID: "a", Result: ResultOK},
		{Client: "alice", Operation: "hangup", SessionID: "d", Result: ResultOK},
		{Client: "bob", Operation: "hold", SessionID: "b", Result: ResultError},
		{Client: "bob", Operation: "hold", SessionID: "b", Result: ResultOK},
	} {
		if _, err := s.RecordRequest(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"everything", Filter{}, []string{"b", "e", "d", "c", "a"}},
		{"by session", Filter{SessionID: "c"}, []string{"c"}},
		{"limit", Filter{Limit: 2}, []string{"b", "e"}},
		{"since is inclusive on End", Filter{Since: at(20 * time.Second)}, []string{"b", "e", "d", "c"}},
		{"until is exclusive on End", Filter{Until: at(20 * time.Second)}, []string{"a"}},
		{"paging with Until", Filter{Until: at(25 * time.Second), Limit: 2}, []string{"d", "c"}},
		{"client who acted on the call", Filter{Client: "alice"}, []string{"d", "a"}},
		{"operation applied to the call", Filter{Operation: "hold"}, []string{"b", "a"}},
		{"client and operation", Filter{Client: "alice", Operation: "hangup"}, []string{"d"}},
		{"nothing matches", Filter{Client: "carol"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Calls(ctx(t), tc.f)
			if err != nil {
				t.Fatalf("Calls: %v", err)
			}
			if !slices.Equal(sessionIDs(got), tc.want) {
				t.Errorf("Calls(%+v) = %v, want %v", tc.f, sessionIDs(got), tc.want)
			}
		})
	}
}

func TestCallsRefuseBeforeID(t *testing.T) {
	s, _ := openTemp(t)
	_, err := s.Calls(ctx(t), Filter{BeforeID: 10})
	if !errors.Is(err, ErrInvalidArgument) || !containsWord(err.Error(), "Filter.BeforeID") {
		t.Errorf("Calls(BeforeID 10) = %v, want ErrInvalidArgument naming Filter.BeforeID", err)
	}
}
