package flood

import (
	"net/netip"
	"testing"
	"time"
)

// clock is a hand-driven time source for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTestLimiter(cfg Config) (*Limiter, *clock) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	l := New(cfg)
	l.now = c.now
	return l, c
}

var (
	alice = netip.MustParseAddr("192.0.2.1")
	bob   = netip.MustParseAddr("192.0.2.2")
)

func TestBurstIsAllowedThenExcessIsLimited(t *testing.T) {
	l, _ := newTestLimiter(Config{Rate: 10, Burst: 5})
	for i := range 5 {
		if v, _ := l.Allow(alice); v != Allowed {
			t.Fatalf("request %d of the burst: %v, want allowed", i+1, v)
		}
	}
	if v, _ := l.Allow(alice); v != Limited {
		t.Fatalf("request past the burst: %v, want limited", v)
	}
	if v, _ := l.Allow(bob); v != Allowed {
		t.Fatalf("another source: %v, want allowed (limits are per source)", v)
	}
}

func TestRateRefillsTheBucket(t *testing.T) {
	l, c := newTestLimiter(Config{Rate: 10, Burst: 1})
	l.Allow(alice)
	if v, _ := l.Allow(alice); v != Limited {
		t.Fatalf("second request at once: %v, want limited", v)
	}
	c.advance(100 * time.Millisecond) // one token at 10/s
	if v, _ := l.Allow(alice); v != Allowed {
		t.Fatalf("after 100 ms at 10/s: %v, want allowed", v)
	}
}

func TestSourceThatKeepsExceedingIsBlockedForBlockFor(t *testing.T) {
	l, c := newTestLimiter(Config{Rate: 10, Burst: 1, BlockAfter: 2 * time.Second, BlockFor: time.Minute})
	blocks := 0
	var last Verdict
	for range 300 { // 3 s of 100 requests/s
		v, just := l.Allow(alice)
		if just {
			blocks++
		}
		last = v
		c.advance(10 * time.Millisecond)
	}
	if blocks != 1 || last != Blocked {
		t.Fatalf("after 3 s over the rate: %d blocks reported, last verdict %v; want 1 and blocked", blocks, last)
	}
	if !l.IsBlocked(alice) {
		t.Fatal("IsBlocked(alice) = false while blocked")
	}
	c.advance(30 * time.Second)
	if v, _ := l.Allow(alice); v != Blocked {
		t.Fatalf("30 s into the block: %v, want blocked even at a low rate", v)
	}
	c.advance(31 * time.Second)
	if v, _ := l.Allow(alice); v != Allowed {
		t.Fatalf("after the block: %v, want allowed", v)
	}
}

func TestShortBurstsWithPausesAreNeverBlocked(t *testing.T) {
	l, c := newTestLimiter(Config{Rate: 10, Burst: 1, BlockAfter: 2 * time.Second, BlockFor: time.Minute})
	for range 10 { // 10 s: each second a burst of 5 in 50 ms, then quiet
		for range 5 {
			if v, _ := l.Allow(alice); v == Blocked {
				t.Fatal("a source whose excess pauses for over a second was blocked")
			}
			c.advance(10 * time.Millisecond)
		}
		c.advance(1100 * time.Millisecond)
	}
}

func TestSourceTableIsBoundedAndSwept(t *testing.T) {
	l, c := newTestLimiter(Config{Rate: 10, Burst: 1, MaxSources: 100})
	for i := range 1000 {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if n := l.Sources(); n != 100 {
		t.Fatalf("%d sources tracked after 1,000 distinct ones, want the bound 100", n)
	}
	// Beyond the bound sources share one bucket: they are limited together.
	if v, _ := l.Allow(netip.MustParseAddr("10.9.9.9")); v != Limited {
		t.Fatalf("a source beyond the bound: %v, want limited by the shared bucket", v)
	}
	c.advance(5 * time.Second)
	l.Allow(alice)
	if n := l.Sources(); n != 1 {
		t.Fatalf("%d sources after they all went idle, want 1 (the new one)", n)
	}
}

func TestZeroRateAllowsEverything(t *testing.T) {
	l, _ := newTestLimiter(Config{})
	for range 1000 {
		if v, _ := l.Allow(alice); v != Allowed {
			t.Fatal("a limiter with rate 0 limited a request")
		}
	}
}
