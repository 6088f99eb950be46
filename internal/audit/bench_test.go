package audit

import (
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
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.RecordRequest(b.Context(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
