package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesMatchSortedValuesWithinBucketPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	var vals []int64
	for range 100000 {
		// Log-uniform from 1 ns to 10 s: every bucket range gets used.
		v := int64(math.Exp(r.Float64() * math.Log(1e10)))
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(math.Ceil(q*float64(len(vals)))), 1)
		want := vals[rank-1]
		got := h.Quantile(q)
		if diff := math.Abs(float64(got-want)) / float64(want); diff > 1.0/64 {
			t.Errorf("Quantile(%v) = %d, want %d within 1/64 (off by %.2f%%)", q, got, want, diff*100)
		}
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("Count() = %d, want %d", h.Count(), len(vals))
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	h := NewHistogram()
	for v := range int64(64) {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 31}, {1, 63}, {1.0 / 64, 0}, {0.01, 0}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) over 0..63 = %d, want %d", c.q, got, c.want)
		}
	}
}

func TestHistogramBucketsCoverEveryValueOnce(t *testing.T) {
	prevHi := int64(-1)
	for i := range (maxExp + 1) * subBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (right after the previous one)", i, lo, prevHi+1)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d] but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
	}
}

func TestHistogramMergeEqualsRecordingBoth(t *testing.T) {
	a, b, both := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range int64(1000) {
		v := i * i * 37
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
		both.Record(v)
	}
	a.Merge(b)
	if a.Summarize(time.Microsecond) != both.Summarize(time.Microsecond) {
		t.Errorf("merged %+v, want %+v", a.Summarize(time.Microsecond), both.Summarize(time.Microsecond))
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.5) != 0 {
		t.Errorf("after Reset: count %d, median %d; want 0, 0", a.Count(), a.Quantile(0.5))
	}
}

func TestHistogramSinceCountsOnlyLaterValues(t *testing.T) {
	h := NewHistogram()
	for range 100 {
		h.Record(1000) // before the window
	}
	before := h.Clone()
	for range 10 {
		h.Record(5)
	}
	w := h.Since(before)
	if w.Count() != 10 || w.Quantile(0.99) != 5 || w.Quantile(0) != 5 {
		t.Errorf("window: count %d, p99 %d, min %d; want 10, 5, 5", w.Count(), w.Quantile(0.99), w.Quantile(0))
	}
	if before.Count() != 100 {
		t.Errorf("the snapshot changed with the histogram: count %d, want 100", before.Count())
	}
}

func TestHistogramSummaryIsInTheRequestedUnit(t *testing.T) {
	h := NewHistogram()
	h.Record(int64(2 * time.Millisecond))
	s := h.Summarize(time.Millisecond)
	if math.Abs(s.P50-2) > 2.0/64 || s.Max != 2 || s.Mean != 2 || s.Count != 1 {
		t.Errorf("Summarize(ms) of one 2 ms value = %+v, want p50≈2, max 2, mean 2, count 1", s)
	}
}

// receiveAll feeds counters to a tracker and counts its verdicts.
func receiveAll(counters ...uint32) (unique, reordered, dups int) {
	var t seqTracker
	for _, c := range counters {
		switch t.add(c) {
		case seqNew:
			unique++
		case seqReordered:
			unique++
			reordered++
		case seqDuplicate:
			dups++
		}
	}
	return
}

func TestSeqTrackerCountsLossReorderingAndDuplicates(t *testing.T) {
	for _, c := range []struct {
		name                    string
		counters                []uint32
		sent                    int
		unique, reordered, dups int
		lost                    int // sent - unique
	}{
		{"in order", []uint32{0, 1, 2, 3, 4}, 5, 5, 0, 0, 0},
		{"gap is loss", []uint32{0, 1, 3, 4}, 5, 4, 0, 0, 1},
		{"lost tail", []uint32{0, 1, 2}, 5, 3, 0, 0, 2},
		{"swap", []uint32{0, 2, 1, 3}, 4, 4, 1, 0, 0},
		{"duplicate", []uint32{0, 1, 1, 2}, 3, 3, 0, 1, 0},
		{"late duplicate", []uint32{0, 2, 1, 1, 3}, 4, 4, 1, 1, 0},
		{"duplicate of the max", []uint32{5, 5, 5}, 1, 1, 0, 2, 0},
		{"straggler beyond the window", []uint32{0, 100, 1}, 101, 3, 1, 0, 98},
		{"wraps at 2^32", []uint32{math.MaxUint32 - 1, math.MaxUint32, 0, 1}, 4, 4, 0, 0, 0},
		{"first packet late", []uint32{3, 0, 1, 2}, 4, 4, 3, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, r, d := receiveAll(c.counters...)
			if u != c.unique || r != c.reordered || d != c.dups || c.sent-u != c.lost {
				t.Errorf("counters %v: unique %d reordered %d duplicates %d lost %d; want %d %d %d %d",
					c.counters, u, r, d, c.sent-u, c.unique, c.reordered, c.dups, c.lost)
			}
		})
	}
}

func TestDTMFPlanSendsEachKeyAsOneEventWithThreeEndPackets(t *testing.T) {
	plan := dtmfPlan("1#")
	var events, ends, markers int
	for i, st := range plan {
		if st.audio {
			continue
		}
		if st.marker {
			markers++
			events++
		}
		if st.payload[1]&0x80 != 0 {
			ends++
		}
		// Every packet of an event carries the event's start timestamp:
		// slot i minus tsBack is constant within the event.
		if i > 0 && !plan[i-1].audio && !st.marker && uint32(i)*160-st.tsBack != uint32(i-1)*160-plan[i-1].tsBack {
			t.Errorf("packet %d: timestamp moves within an event", i)
		}
	}
	if events != 2 || markers != 2 || ends != 6 {
		t.Errorf("plan for \"1#\": %d events, %d markers, %d end packets; want 2, 2, 6", events, markers, ends)
	}
	if plan[0].payload[0] != 1 || plan[12].payload[0] != 11 {
		t.Errorf("event codes %d, %d; want 1 and 11 (#)", plan[0].payload[0], plan[12].payload[0])
	}
}

func TestSeqTrackerSplitsLossIntoStartMiddleAndEnd(t *testing.T) {
	for _, c := range []struct {
		name            string
		counters        []uint32
		sent            uint32
		start, mid, end uint32
	}{
		{"none lost", []uint32{0, 1, 2}, 3, 0, 0, 0},
		{"first two lost", []uint32{2, 3, 4}, 5, 2, 0, 0},
		{"one in the middle", []uint32{0, 1, 3}, 4, 0, 1, 0},
		{"tail lost", []uint32{0, 1}, 4, 0, 0, 2},
		{"all three kinds", []uint32{1, 3, 4}, 7, 1, 1, 2},
		{"late first packet", []uint32{1, 0, 2}, 3, 0, 0, 0},
		{"nothing received", nil, 5, 5, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tr seqTracker
			for _, n := range c.counters {
				tr.add(n)
			}
			start, mid, end := tr.lossAt(c.sent)
			if start != c.start || mid != c.mid || end != c.end {
				t.Errorf("lossAt(%d) after %v = %d, %d, %d; want %d, %d, %d", c.sent, c.counters, start, mid, end, c.start, c.mid, c.end)
			}
		})
	}
}
