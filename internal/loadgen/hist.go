package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations (nanoseconds) in log-linear buckets: values
// under 2^subBits exactly, larger ones with 2^subBits sub-buckets per power
// of two, that is within 1/64 (1.6%) of the value. It never allocates after
// NewHistogram and is not safe for concurrent use: give each goroutine its
// own and Merge them.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
}

const (
	subBits    = 6
	subBuckets = 1 << subBits
	// maxExp covers values up to 2^(maxExp+subBits) ns, about 4.9 hours.
	maxExp = 38
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, (maxExp+2)*subBuckets), min: math.MaxInt64}
}

// bucketOf returns the bucket index of v >= 0.
func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [64, 128)
	if e > maxExp {
		return (maxExp+2)*subBuckets - 1
	}
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// bucketRange returns the values [lo, hi] a bucket holds.
func bucketRange(i int) (lo, hi int64) {
	if i < subBuckets {
		return int64(i), int64(i)
	}
	e := i/subBuckets - 1
	lo = int64(subBuckets+i%subBuckets) << e
	return lo, lo + 1<<e - 1
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Reset empties the histogram.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the value at quantile q (0..1): the smallest recorded
// value v such that at least q of the values are <= v, to the bucket's
// precision (its midpoint, clamped to the exact min and max). 0 if empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, hi := bucketRange(i)
			return min(max(lo+(hi-lo)/2, h.min), h.max)
		}
	}
	return h.max
}

// Summary is a distribution in milliseconds or microseconds, as its field
// names say, for the JSON result.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Summarize reports h in the given unit (time.Millisecond, time.Microsecond).
func (h *Histogram) Summarize(unit time.Duration) Summary {
	if h.n == 0 {
		return Summary{}
	}
	u := float64(unit)
	return Summary{
		Count: h.n,
		Mean:  round3(h.sum / float64(h.n) / u),
		P50:   round3(float64(h.Quantile(0.50)) / u),
		P90:   round3(float64(h.Quantile(0.90)) / u),
		P99:   round3(float64(h.Quantile(0.99)) / u),
		P999:  round3(float64(h.Quantile(0.999)) / u),
		Max:   round3(float64(h.max) / u),
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Clone returns a copy of h.
func (h *Histogram) Clone() *Histogram {
	c := *h
	c.counts = append([]uint64(nil), h.counts...)
	return &c
}

// Since returns the values recorded in h after the snapshot earlier (a
// Clone of h taken before). Its min and max are bucket bounds, not exact.
func (h *Histogram) Since(earlier *Histogram) *Histogram {
	d := NewHistogram()
	for i, c := range h.counts {
		if c -= earlier.counts[i]; c > 0 {
			d.counts[i] = c
			d.n += c
			lo, hi := bucketRange(i)
			d.min = min(d.min, lo)
			d.max = max(d.max, hi)
		}
	}
	d.sum = h.sum - earlier.sum
	return d
}
