package listen

import (
	"testing"
	"time"
)

// in is one source packet given to renumber.next.
type in struct {
	gen, ssrc uint32
	seq       uint16
	ts        uint32
	skipped   uint16
	at        time.Duration // since the test's epoch
}

// out is what the stream should carry, relative to the first packet's
// number and timestamp; drop marks a packet that must not be written.
type out struct {
	seq    uint16
	ts     uint32
	marker bool
	drop   bool
}

func TestRenumberKeepsOneContinuousStream(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name string
		in   []in
		want []out
	}{
		{
			name: "a plain source keeps its spacing",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 101, 8160, 0, 20 * ms}, {1, 7, 102, 8320, 0, 40 * ms}},
			want: []out{{0, 0, true, false}, {1, 160, false, false}, {2, 320, false, false}},
		},
		{
			name: "loss stays a gap the browser can see",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 103, 8480, 0, 60 * ms}},
			want: []out{{0, 0, true, false}, {3, 480, false, false}},
		},
		{
			name: "filtered telephone-event packets leave no gap",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 104, 8800, 3, 100 * ms}, {1, 7, 105, 8960, 0, 120 * ms}},
			want: []out{{0, 0, true, false}, {1, 800, false, false}, {2, 960, false, false}},
		},
		{
			name: "a new SSRC continues the sequence and advances by wall-clock time",
			in: []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 101, 8160, 0, 20 * ms},
				{1, 9, 5000, 123456, 0, 520 * ms}, {1, 9, 5001, 123616, 0, 540 * ms}},
			want: []out{{0, 0, true, false}, {1, 160, false, false}, {2, 160 + 4000, true, false}, {3, 160 + 4160, false, false}},
		},
		{
			name: "a new binding (transfer) with the same SSRC is a new source too",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {2, 7, 100, 8000, 0, 20 * ms}},
			want: []out{{0, 0, true, false}, {1, 160, true, false}},
		},
		{
			name: "a source that comes back from hold with time stood still is resynchronised",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 101, 8160, 0, 10 * time.Second}},
			want: []out{{0, 0, true, false}, {1, 80000, true, false}},
		},
		{
			name: "a source whose timestamps kept time across silence is left alone",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 101, 8000 + 80000, 0, 10 * time.Second}},
			want: []out{{0, 0, true, false}, {1, 80000, false, false}},
		},
		{
			name: "a source change arriving at once still moves on by one packet",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 8, 9, 0, 0, 0}},
			want: []out{{0, 0, true, false}, {1, 160, true, false}},
		},
		{
			name: "a sequence jump is a restart",
			in:   []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 30000, 8160, 0, 20 * ms}},
			want: []out{{0, 0, true, false}, {1, 160, true, false}},
		},
		{
			name: "duplicates are dropped; late packets of the segment keep their place",
			in: []in{{1, 7, 100, 8000, 0, 0}, {1, 7, 102, 8320, 0, 40 * ms}, {1, 7, 102, 8320, 0, 41 * ms},
				{1, 7, 101, 8160, 0, 42 * ms}, {1, 7, 99, 7840, 0, 43 * ms}, {1, 7, 103, 8480, 0, 60 * ms}},
			want: []out{{0, 0, true, false}, {2, 320, false, false}, {drop: true}, {1, 160, false, false}, {drop: true}, {3, 480, false, false}},
		},
		{
			name: "sequence numbers wrap",
			in:   []in{{1, 7, 65535, 8000, 0, 0}, {1, 7, 0, 8160, 0, 20 * ms}},
			want: []out{{0, 0, true, false}, {1, 160, false, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			epoch := time.Now()
			r := newRenumber(8000)
			var seq0 uint16
			var ts0 uint32
			for i, p := range tt.in {
				seq, ts, marker, ok := r.next(p.gen, p.ssrc, p.seq, p.ts, p.skipped, epoch.Add(p.at), false)
				if i == 0 {
					seq0, ts0 = seq, ts
				}
				w := tt.want[i]
				if ok == w.drop {
					t.Fatalf("packet %d (seq %d): written = %v, want %v", i, p.seq, ok, !w.drop)
				}
				if !ok {
					continue
				}
				if seq-seq0 != w.seq || ts-ts0 != w.ts || marker != w.marker {
					t.Errorf("packet %d (SSRC %d seq %d ts %d): stream seq +%d ts +%d marker %v; want +%d, +%d, %v",
						i, p.ssrc, p.seq, p.ts, seq-seq0, ts-ts0, marker, w.seq, w.ts, w.marker)
				}
			}
		})
	}
}
