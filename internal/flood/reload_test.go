package flood

import (
	"testing"
	"time"
)

// SetConfig gives every source the new rate and burst at once, keeps a
// block in force (a reload forgives no flooder), and can turn the limit
// off and on again.
func TestSetConfigChangesLimitsAndKeepsBlocks(t *testing.T) {
	l, c := newTestLimiter(Config{Rate: 10, Burst: 1, BlockAfter: time.Second, BlockFor: time.Minute})
	for range 200 { // 2 s of 100 requests/s: blocked
		l.Allow(alice)
		c.advance(10 * time.Millisecond)
	}
	if !l.IsBlocked(alice) {
		t.Fatal("alice is not blocked before the reload")
	}
	l.Allow(bob) // bob's bucket is empty now

	l.SetConfig(Config{Rate: 1000, Burst: 50, BlockAfter: time.Second, BlockFor: 5 * time.Second})
	if !l.IsBlocked(alice) {
		t.Error("SetConfig lifted alice's block")
	}
	if got := l.BlockFor(); got != 5*time.Second {
		t.Errorf("BlockFor = %v; want the new 5s", got)
	}
	c.advance(50 * time.Millisecond) // at 1000/s bob's bucket refills to its new burst
	for i := range 50 {
		if v, _ := l.Allow(bob); v != Allowed {
			t.Fatalf("bob's request %d of the new burst of 50: %v", i+1, v)
		}
	}

	l.SetConfig(Config{})
	if l.Enabled() || l.IsBlocked(alice) {
		t.Error("SetConfig with rate 0 left the limiter on")
	}
	for range 100 {
		if v, _ := l.Allow(alice); v != Allowed {
			t.Fatalf("with the limit off a request was %v", v)
		}
	}
	l.SetConfig(Config{Rate: 1, Burst: 1})
	l.Allow(bob)
	if v, _ := l.Allow(bob); v != Limited {
		t.Errorf("with the limit back on at 1/s a second request at once was %v; want limited", v)
	}
}
