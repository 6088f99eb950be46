package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
)

var (
	testAddr  = netip.MustParseAddr("192.0.2.1")
	otherAddr = netip.MustParseAddr("192.0.2.2")
)

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// threeClients returns an Authenticator for clients c0, c1, c2 with tokens
// token-0..2, a fake clock and the given rate limit.
func threeClients(t *testing.T, rl RateLimit) (*Authenticator, *fakeClock) {
	t.Helper()
	var cs []config.Client
	for i := range 3 {
		cs = append(cs, config.Client{Name: fmt.Sprintf("c%d", i), TokenHash: hashOf(i), Privileges: []string{"sessions.view"}})
	}
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, err := NewWithOptions(cs, nil, Options{RateLimit: rl, Now: clock.now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, clock
}

func TestAuthenticate(t *testing.T) {
	a, _ := threeClients(t, RateLimit{})
	tests := []struct {
		token string
		want  string // client name, or "" for an error
		err   error
	}{
		{"token-0", "c0", nil},
		{"token-2", "c2", nil},
		{"", "", ErrNoToken},
		{"token-3", "", ErrBadToken},
		{"token-0 ", "", ErrBadToken},
		{HashToken("token-0"), "", ErrBadToken}, // the hash is not the token
	}
	for _, tt := range tests {
		c, err := a.Authenticate(tt.token, testAddr)
		if !errors.Is(err, tt.err) || (tt.err != nil) != (c == nil) {
			t.Errorf("Authenticate(%q) = %v, %v; want error %v", tt.token, c, err, tt.err)
			continue
		}
		if c != nil && c.Name != tt.want {
			t.Errorf("Authenticate(%q) = %s, want %s", tt.token, c.Name, tt.want)
		}
	}
}

func TestAuthenticateComparesWithEveryClient(t *testing.T) {
	a, _ := threeClients(t, RateLimit{})
	calls := 0
	a.compare = func(x, y []byte) int {
		calls++
		return subtle.ConstantTimeCompare(x, y)
	}
	for _, tt := range []struct{ token, want string }{
		{"wrong", ""},
		{"token-0", "c0"}, // a match on the first client does not stop the loop
		{"token-1", "c1"},
		{"token-2", "c2"},
	} {
		calls = 0
		c, _ := a.Authenticate(tt.token, testAddr)
		if calls != 3 {
			t.Errorf("Authenticate(%q) compared %d hashes, want all 3", tt.token, calls)
		}
		if name := func() string {
			if c == nil {
				return ""
			}
			return c.Name
		}(); name != tt.want {
			t.Errorf("Authenticate(%q) = %q, want %q", tt.token, name, tt.want)
		}
	}
}

func TestAddClient(t *testing.T) {
	var a Authenticator // the zero value works
	if _, err := a.Authenticate("cc_x", testAddr); !errors.Is(err, ErrBadToken) {
		t.Fatalf("zero Authenticator: %v, want ErrBadToken", err)
	}
	token, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	a.AddClient(NewAdmin(), hash)
	c, err := a.Authenticate(token, testAddr)
	if err != nil || c.Name != "admin" || !c.Can(AuditView) {
		t.Fatalf("Authenticate(admin token) = %+v, %v", c, err)
	}

	b, _ := threeClients(t, RateLimit{})
	b.AddClient(NewAdmin(), hash)
	for tok, want := range map[string]string{token: "admin", "token-1": "c1"} {
		if c, err := b.Authenticate(tok, testAddr); err != nil || c.Name != want {
			t.Errorf("after AddClient, %s authenticates as %v, %v; want %s", want, c, err, want)
		}
	}
}

func TestAddClientPanicsOnMalformedHash(t *testing.T) {
	for _, h := range []string{"", "cc_token", "sha256:abc", HashToken("x")[:70] + "ZZ"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddClient(%q) did not panic", h)
				}
			}()
			new(Authenticator).AddClient(NewAdmin(), h)
		}()
	}
}

func TestRateLimitLocksOutASourceAfterTooManyFailures(t *testing.T) {
	const max = 10
	type step struct {
		advance time.Duration
		token   string
		from    netip.Addr
		times   int
		want    error // for the last of times
	}
	bad, good := "wrong", "token-1"
	tests := []struct {
		name  string
		steps []step
	}{
		// A lockout shows as ErrRateLimited for a wrong token (which is
		// not counted then); a right token is always let in.
		{"tenth failure locks out wrong tokens; a right token still authenticates", []step{
			{0, bad, testAddr, max - 1, ErrBadToken},
			{0, bad, testAddr, 1, ErrBadToken},
			{0, bad, testAddr, 1, ErrRateLimited},
			{0, good, testAddr, 1, nil},
			{0, bad, testAddr, 1, ErrRateLimited},
			{0, good, testAddr, 3, nil},
		}},
		{"other sources are unaffected", []step{
			{0, bad, testAddr, max, ErrBadToken},
			{0, good, otherAddr, 1, nil},
			{0, bad, otherAddr, 1, ErrBadToken},
			{0, good, otherAddr, 1, nil},
			{0, bad, testAddr, 1, ErrRateLimited},
		}},
		{"lockout expires", []step{
			{0, bad, testAddr, max, ErrBadToken},
			{time.Minute - time.Millisecond, bad, testAddr, 1, ErrRateLimited},
			{time.Millisecond, bad, testAddr, 1, ErrBadToken},
		}},
		{"after a lockout the count starts afresh", []step{
			{0, bad, testAddr, max, ErrBadToken},
			{time.Minute, bad, testAddr, max - 1, ErrBadToken},
			{0, good, testAddr, 1, nil},
			{0, bad, testAddr, 1, ErrBadToken},
			{0, bad, testAddr, 1, ErrRateLimited},
		}},
		{"attempts during a lockout do not extend it", []step{
			{0, bad, testAddr, max, ErrBadToken},
			{30 * time.Second, bad, testAddr, 100, ErrRateLimited},
			{30 * time.Second, bad, testAddr, 1, ErrBadToken},
		}},
		{"right tokens during a lockout neither end nor extend it", []step{
			{0, bad, testAddr, max, ErrBadToken},
			{30 * time.Second, good, testAddr, 100, nil},
			{0, bad, testAddr, 1, ErrRateLimited},
			{30 * time.Second, bad, testAddr, 1, ErrBadToken},
		}},
		{"successes do not count", []step{
			{0, good, testAddr, 50, nil},
			{0, bad, testAddr, max - 1, ErrBadToken},
			{0, bad, testAddr, 1, ErrBadToken},
		}},
		{"successes do not reset the count", []step{
			{0, bad, testAddr, max - 1, ErrBadToken},
			{0, good, testAddr, 1, nil},
			{0, bad, testAddr, 1, ErrBadToken},
			{0, bad, testAddr, 1, ErrRateLimited},
		}},
		{"failures older than the window are forgotten", []step{
			{0, bad, testAddr, max - 1, ErrBadToken},
			{time.Minute, bad, testAddr, max - 1, ErrBadToken},
			{0, bad, testAddr, 1, ErrBadToken},
		}},
		{"empty tokens are not failures", []step{
			{0, "", testAddr, 100, ErrNoToken},
			{0, bad, testAddr, 1, ErrBadToken},
		}},
		{"an IPv6 /64 is one source", []step{
			{0, bad, netip.MustParseAddr("2001:db8:1:2::1"), max / 2, ErrBadToken},
			{0, bad, netip.MustParseAddr("2001:db8:1:2:ffff::9"), max / 2, ErrBadToken},
			{0, bad, netip.MustParseAddr("2001:db8:1:2::77"), 1, ErrRateLimited},
			{0, good, netip.MustParseAddr("2001:db8:1:2::77"), 1, nil},
			{0, bad, netip.MustParseAddr("2001:db8:1:3::1"), 1, ErrBadToken},
		}},
		{"an IPv4-mapped IPv6 address is its IPv4 address", []step{
			{0, bad, netip.MustParseAddr("::ffff:192.0.2.1"), max, ErrBadToken},
			{0, bad, testAddr, 1, ErrRateLimited},
			{0, good, testAddr, 1, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clock := threeClients(t, RateLimit{})
			for i, s := range tt.steps {
				clock.advance(s.advance)
				var err error
				for range s.times {
					_, err = a.Authenticate(s.token, s.from)
				}
				if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
					t.Fatalf("step %d (%q from %s ×%d): %v, want %v", i, s.token, s.from, s.times, err, s.want)
				}
			}
		})
	}
}

func TestRateLimitErrorSaysHowLongToWait(t *testing.T) {
	a, clock := threeClients(t, RateLimit{MaxFailures: 2, Lockout: 5 * time.Minute})
	a.Authenticate("x", testAddr)
	a.Authenticate("x", testAddr)
	clock.advance(90 * time.Second)
	_, err := a.Authenticate("y", testAddr)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 210*time.Second {
		t.Fatalf("err = %v, want a *RateLimitError with RetryAfter 3m30s", err)
	}
	if want := "too many failed authentications from this source; retry in 210s"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestRateLimitMemoryIsBounded(t *testing.T) {
	a, clock := threeClients(t, RateLimit{MaxFailures: 2, MaxSources: 3})
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	// Lock out source 0, then let 1000 other sources fail once each.
	a.Authenticate("x", addr(0))
	a.Authenticate("x", addr(0))
	if _, err := a.Authenticate("y", addr(0)); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("source 0 not locked out: %v", err)
	}
	for i := 1; i <= 1000; i++ {
		clock.advance(time.Millisecond)
		a.Authenticate("x", addr(i))
		if n := len(a.lim.sources); n > 3 || a.lim.lru.Len() != n {
			t.Fatalf("after %d sources: %d tracked (list %d), want at most 3", i, n, a.lim.lru.Len())
		}
	}
	// The oldest was forgotten; the newest still count.
	if _, err := a.Authenticate("y", addr(0)); !errors.Is(err, ErrBadToken) {
		t.Errorf("evicted source 0: %v, want forgotten (ErrBadToken, not locked out)", err)
	}
	a.Authenticate("x", addr(1000))
	if _, err := a.Authenticate("y", addr(1000)); !errors.Is(err, ErrRateLimited) {
		t.Errorf("source 1000's failures were forgotten: %v", err)
	}
}

func TestRateLimitForgetsExpiredSources(t *testing.T) {
	a, clock := threeClients(t, RateLimit{})
	for i := range 100 {
		a.Authenticate("x", netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	clock.advance(time.Minute)
	a.Authenticate("x", testAddr)
	if n := len(a.lim.sources); n != 1 {
		t.Errorf("%d sources tracked after the window passed, want 1", n)
	}
}

func TestAuthenticateIsSafeForConcurrentUse(t *testing.T) {
	a, _ := threeClients(t, RateLimit{MaxFailures: 1000})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if _, err := a.Authenticate(fmt.Sprintf("token-%d", i%3), netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i)})); err != nil {
					t.Errorf("Authenticate: %v", err)
					return
				}
				a.Authenticate("bad", testAddr)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 20 {
				a.AddClient(&Client{Name: "extra"}, HashToken(fmt.Sprintf("extra-%d-%d", g, i)))
			}
		}()
	}
	wg.Wait()
	if c, err := a.Authenticate("extra-3-19", otherAddr); err != nil || c.Name != "extra" {
		t.Errorf("added client: %v, %v", c, err)
	}
}

func TestConcurrentGuessesCannotPassTheLimit(t *testing.T) {
	const max = 10
	a, _ := threeClients(t, RateLimit{MaxFailures: max})
	var mu sync.Mutex
	bad := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := a.Authenticate("guess", testAddr); errors.Is(err, ErrBadToken) {
					mu.Lock()
					bad++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if bad != max {
		t.Errorf("%d guesses were checked, want exactly %d before the lockout", bad, max)
	}
}
