package audit

import (
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRecordRequest measures one durable (fsynced) audit write, the
// cost every session-touching API request pays before it is answered.
func BenchmarkRecordRequest(b *testing.B) {
	s, _ := openTemp(b)
	r := Request{Time: at(0), Client: "alice", Source: "10.0.0.7:5123", Operation: "blindTransfer",
		Args: map[string]string{"transferor": "1001", "target": "1003"}, SessionID: "0193f1d2-7c1e-7a55-9d7e-6c0b3a8b2f10",
		Result: ResultOK, Status: 202}
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		r.Time = r.Time.Add(time.Millisecond)
		if _, err := s.RecordRequest(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordRequestParallel is the same write from many API handlers
// at once; they queue on the single connection.
func BenchmarkRecordRequestParallel(b *testing.B) {
	s, _ := openTemp(b)
	r := Request{Time: at(0), Client: "alice", Operation: "hold", SessionID: "s1", Result: ResultOK, Status: 200}
	b.ReportAllocs()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.RecordRequest(b.Context(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchCall is a typical ended call's record.
func benchCall() Call {
	return Call{SessionID: "0193f1d2-7c1e-7a55-9d7e-6c0b3a8b2f10", Caller: "1001", CallerName: "Alice",
		Callee: "1002", CalleeName: "Bob", Dialled: "1002", Start: at(0), Answer: at(2 * time.Second),
		End: at(60 * time.Second), State: "closed", EndReason: "caller hung up",
		Operations: []string{"hold by alice ok", "unhold by alice ok"}}
}

// BenchmarkRecordCall measures one durable call record written alone: what
// a session pays when no other record is being written at the same time.
func BenchmarkRecordCall(b *testing.B) {
	s, _ := openTemp(b)
	c := benchCall()
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		c.SessionID = "s" + strconv.Itoa(i)
		if err := s.RecordCall(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordCallParallel is call records from many sessions ending at
// once, as under load: the case group commit is for. Each goroutine's
// RecordCall still waits for its own record to be durable.
func BenchmarkRecordCallParallel(b *testing.B) {
	s, _ := openTemp(b)
	var n atomic.Int64
	b.ReportAllocs()
	defer reportCPU(b)()
	b.SetParallelism(16) // many sessions end concurrently, whatever GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		c := benchCall()
		for pb.Next() {
			c.SessionID = "s" + strconv.FormatInt(n.Add(1), 10)
			if err := s.RecordCall(b.Context(), c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// reportCPU reports the process's CPU time (user + system, every goroutine
// and SQLite's work included) per operation as cpu-ns/op: ns/op is mostly
// waiting for fsync, and CPU is what the per-call profile is about. Use as
// defer reportCPU(b)() before the loop.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
