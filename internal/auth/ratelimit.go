package auth

import (
	"container/list"
	"net/netip"
	"time"
)

// RateLimit bounds failed authentications: MaxFailures failures from one
// source within Window (counted from the first) lock the source out for
// Lockout. At most MaxSources sources are tracked; past that the one whose
// last failure is oldest is forgotten, so memory stays bounded even when
// many sources fail (at the price that a flood from more sources than that
// can end a lockout early). Zero fields take the defaults: 10 failures,
// 1 minute, 1 minute, 10000 sources.
type RateLimit struct {
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
	MaxSources  int
}

func (r RateLimit) withDefaults() RateLimit {
	if r.MaxFailures <= 0 {
		r.MaxFailures = 10
	}
	if r.Window <= 0 {
		r.Window = time.Minute
	}
	if r.Lockout <= 0 {
		r.Lockout = time.Minute
	}
	if r.MaxSources <= 0 {
		r.MaxSources = 10000
	}
	return r
}

// limiter tracks failures per source, most recent failure first in lru.
// The Authenticator's mu guards it.
type limiter struct {
	cfg     RateLimit
	sources map[netip.Prefix]*list.Element
	lru     list.List // of *source
}

type source struct {
	key         netip.Prefix
	windowStart time.Time // first failure of the current window
	failures    int
	lockedUntil time.Time
}

// stale reports whether s holds nothing that still matters at now.
func (l *limiter) stale(s *source, now time.Time) bool {
	return !now.Before(s.lockedUntil) && now.Sub(s.windowStart) >= l.cfg.Window
}

// locked reports whether key is locked out at now, and for how long still.
func (l *limiter) locked(key netip.Prefix, now time.Time) (time.Duration, bool) {
	el, ok := l.sources[key]
	if !ok {
		return 0, false
	}
	s := el.Value.(*source)
	if now.Before(s.lockedUntil) {
		return s.lockedUntil.Sub(now), true
	}
	return 0, false
}

// fail counts a failure of key at now and locks it out when it reaches the
// limit.
func (l *limiter) fail(key netip.Prefix, now time.Time) {
	if l.cfg == (RateLimit{}) {
		l.cfg = l.cfg.withDefaults() // zero Authenticator
	}
	if l.sources == nil {
		l.sources = map[netip.Prefix]*list.Element{}
	}
	// Forget sources whose failures have all expired, oldest first; the
	// list is ordered by last failure, so this stops at the first live one.
	for back := l.lru.Back(); back != nil; back = l.lru.Back() {
		s := back.Value.(*source)
		if !l.stale(s, now) {
			break
		}
		l.remove(back)
	}

	el, ok := l.sources[key]
	if !ok {
		for l.lru.Len() >= l.cfg.MaxSources {
			l.remove(l.lru.Back())
		}
		el = l.lru.PushFront(&source{key: key})
		l.sources[key] = el
	}
	l.lru.MoveToFront(el)
	s := el.Value.(*source)
	if s.failures == 0 || now.Sub(s.windowStart) >= l.cfg.Window {
		s.windowStart, s.failures = now, 0
	}
	s.failures++
	if s.failures >= l.cfg.MaxFailures {
		// Start afresh when the lockout ends.
		s.lockedUntil, s.failures = now.Add(l.cfg.Lockout), 0
	}
}

func (l *limiter) remove(el *list.Element) {
	delete(l.sources, el.Value.(*source).key)
	l.lru.Remove(el)
}
