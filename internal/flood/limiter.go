package flood

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Config sets a Limiter's limits.
type Config struct {
	// Rate is the sustained number of requests per second a source may
	// send; 0 or less turns the limiter off (every request is allowed).
	Rate float64
	// Burst is how many requests a source may send at once above Rate.
	Burst int
	// BlockAfter is how long a source must keep exceeding its rate (with
	// no second free of excess) before it is blocked; 0 never blocks.
	BlockAfter time.Duration
	// BlockFor is how long a blocked source stays blocked.
	BlockFor time.Duration
	// MaxSources bounds the table of sources (default 65,536); sources
	// beyond it share one bucket until idle ones are swept.
	MaxSources int
}

// Verdict is what the Limiter says of one request.
type Verdict int

const (
	// Allowed requests go on.
	Allowed Verdict = iota
	// Limited requests exceeded the source's rate and are dropped.
	Limited
	// Blocked requests come from a source blocked for exceeding its rate
	// for too long; Limiter.Allow returns Blocked from the request that
	// blocked it on.
	Blocked
)

func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case Limited:
		return "limited"
	default:
		return "blocked"
	}
}

// A Limiter keeps one token bucket per source address. It is safe for
// concurrent use. The zero value is not usable: call New.
type Limiter struct {
	now func() time.Time
	// enabled is cfg.Rate > 0, read without the lock on every request.
	enabled atomic.Bool

	mu        sync.Mutex
	cfg       Config // changed by SetConfig
	sources   map[netip.Addr]*source
	overflow  *source // shared by sources beyond MaxSources
	lastSweep time.Time
}

type source struct {
	bucket *rate.Limiter
	// last is when the source last sent a request.
	last time.Time
	// overSince is when the current run of excess began; lastOver is the
	// last excess request. A second without excess ends the run.
	overSince, lastOver time.Time
	blockedUntil        time.Time
}

// New makes a Limiter.
func New(cfg Config) *Limiter {
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1 << 16
	}
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	l := &Limiter{cfg: cfg, now: time.Now, sources: make(map[netip.Addr]*source)}
	l.enabled.Store(cfg.Rate > 0)
	l.overflow = l.newSource()
	return l
}

// SetConfig changes the limits from now on (a configuration reload):
// every source's bucket takes the new rate and burst, and what the
// limiter knows of each source stays, so a blocked source stays blocked
// until its block ends and a reload forgives no flooder. MaxSources is
// kept as it was.
func (l *Limiter) SetConfig(cfg Config) {
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg.MaxSources = l.cfg.MaxSources
	l.cfg = cfg
	set := func(s *source) {
		s.bucket.SetLimitAt(now, rate.Limit(cfg.Rate))
		s.bucket.SetBurstAt(now, cfg.Burst)
	}
	for _, s := range l.sources {
		set(s)
	}
	set(l.overflow)
	l.enabled.Store(cfg.Rate > 0)
}

// BlockFor is how long a source that exceeds its rate for too long is
// blocked now.
func (l *Limiter) BlockFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.BlockFor
}

func (l *Limiter) newSource() *source {
	return &source{bucket: rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)}
}

// Enabled reports whether the limiter limits anything.
func (l *Limiter) Enabled() bool { return l != nil && l.enabled.Load() }

// Allow takes one request from addr and says whether it may go on.
// justBlocked is true for the one request that blocked its source, so the
// caller can log the block once.
func (l *Limiter) Allow(addr netip.Addr) (v Verdict, justBlocked bool) {
	if !l.Enabled() {
		return Allowed, false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Rate <= 0 {
		return Allowed, false // turned off by a SetConfig since Enabled
	}
	l.sweepLocked(now)
	s := l.sources[addr]
	if s == nil {
		if len(l.sources) >= l.cfg.MaxSources {
			s = l.overflow
		} else {
			s = l.newSource()
			l.sources[addr] = s
		}
	}
	s.last = now
	if now.Before(s.blockedUntil) {
		return Blocked, false
	}
	if s.bucket.AllowN(now, 1) {
		return Allowed, false
	}
	if s.overSince.IsZero() || now.Sub(s.lastOver) > time.Second {
		s.overSince = now
	}
	s.lastOver = now
	if l.cfg.BlockAfter > 0 && now.Sub(s.overSince) >= l.cfg.BlockAfter {
		s.blockedUntil = now.Add(l.cfg.BlockFor)
		s.overSince = time.Time{}
		return Blocked, true
	}
	return Limited, false
}

// IsBlocked reports whether addr is blocked now, without taking a request.
func (l *Limiter) IsBlocked(addr netip.Addr) bool {
	if !l.Enabled() {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sources[addr]
	return s != nil && now.Before(s.blockedUntil)
}

// Sources returns how many sources the limiter tracks now.
func (l *Limiter) Sources() int {
	if !l.Enabled() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}

// sweepLocked forgets, at most once a second, sources that are neither
// blocked nor recently active: their bucket has refilled, so forgetting
// them changes nothing but the memory they hold.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second && now.After(l.lastSweep) {
		return
	}
	l.lastSweep = now
	idle := time.Duration(float64(l.cfg.Burst)/l.cfg.Rate*float64(time.Second)) + time.Second
	for addr, s := range l.sources {
		if now.Sub(s.last) > idle && !now.Before(s.blockedUntil) {
			delete(l.sources, addr)
		}
	}
}
