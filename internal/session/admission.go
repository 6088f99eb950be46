package session

import (
	"net/netip"
	"sync"
)

// admission bounds the calls the engine runs: calls.max_sessions overall,
// and optionally calls.max_per_source for the calls of one source address.
// A call holds its place from the INVITE's admission until its session's
// goroutine has returned, and admission is one locked step, so no burst of
// INVITEs, however concurrent, gets past the bounds (checking a count and
// adding the session later, as before, let 4,370 sessions past a bound of
// 1,000).
type admission struct {
	max       int
	perSource int

	mu       sync.Mutex
	live     int
	bySource map[netip.Addr]int
}

func newAdmission(max, perSource int) *admission {
	return &admission{max: max, perSource: perSource, bySource: make(map[netip.Addr]int)}
}

// admitResult says why a call was refused, for the log.
type admitResult int

const (
	admitted admitResult = iota
	atMaxSessions
	atMaxPerSource
)

// admit takes a place for a call from src; release gives it back and must
// be called exactly once when admitted.
func (a *admission) admit(src netip.Addr) (admitResult, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.live >= a.max {
		return atMaxSessions, nil
	}
	if a.perSource > 0 && a.bySource[src] >= a.perSource {
		return atMaxPerSource, nil
	}
	a.live++
	a.bySource[src]++ // counted whatever perSource is: a reload may set it
	var once sync.Once
	return admitted, func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.live--
			if a.bySource[src]--; a.bySource[src] <= 0 {
				delete(a.bySource, src)
			}
		})
	}
}

// count returns the calls holding a place now.
func (a *admission) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live
}

// adopt counts a re-adopted call (recover.go), which no limit refuses: it
// was admitted when it began.
func (a *admission) adopt() func() {
	a.mu.Lock()
	a.live++
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.live--
			a.mu.Unlock()
		})
	}
}
