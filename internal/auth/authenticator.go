package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/callctl/callctl/internal/config"
)

// Errors of Authenticate. The API answers ErrNoToken and ErrBadToken with
// 401 and ErrRateLimited with 429; the last comes as a *RateLimitError
// carrying how long to wait.
var (
	ErrNoToken     = errors.New("no bearer token")
	ErrBadToken    = errors.New("unknown bearer token")
	ErrRateLimited = errors.New("too many failed authentications from this source")
)

// RateLimitError is Authenticate's refusal of a locked-out source.
// errors.Is(err, ErrRateLimited) holds for it.
type RateLimitError struct {
	// RetryAfter is how long the source's lockout still lasts.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	secs := (e.RetryAfter + time.Second - 1) / time.Second
	return fmt.Sprintf("%v; retry in %ds", ErrRateLimited, secs)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Options tune an Authenticator. The zero value means the defaults.
type Options struct {
	RateLimit RateLimit
	// Now returns the current time for the rate limiter; nil means
	// time.Now. Tests pass a fake clock.
	Now func() time.Time
}

// Authenticator turns bearer tokens into clients. Its methods are safe for
// concurrent use. The zero value knows no clients and uses the default rate
// limit; New fills it from the configuration.
type Authenticator struct {
	// writeMu serializes AddClient and Replace; readers load entries
	// without locking. entries is configured followed by added, rebuilt
	// whole at every change and never modified once stored, so a request
	// matches against one table or the other, never a mix (reload.go).
	writeMu    sync.Mutex
	entries    atomic.Pointer[[]entry]
	configured []entry // from the configuration (New, Replace)
	added      []entry // from AddClient: kept across Replace

	now func() time.Time
	// compare is subtle.ConstantTimeCompare; tests count its calls.
	compare func(x, y []byte) int

	// mu guards lim. Authenticate holds it from the lockout check to the
	// failure count, so concurrent guesses from one source cannot slip
	// past the limit between the two.
	mu  sync.Mutex
	lim limiter
}

// entry is a client and the SHA-256 of its token.
type entry struct {
	hash   [sha256.Size]byte
	client *Client
}

// New checks the configured clients and roles and returns an Authenticator
// for them with the default rate limit. It reports every problem at once
// (errors.Join), each a *config.FieldError naming its key.
func New(clients []config.Client, roles []config.Role) (*Authenticator, error) {
	return NewWithOptions(clients, roles, Options{})
}

// Check reports what New would refuse in clients and roles (token hashes,
// privilege and role names, duplicates), without building anything:
// `callctl config check` refuses exactly what `serve` does.
func Check(clients []config.Client, roles []config.Role) error {
	_, err := compile(clients, roles)
	return err
}

// NewWithOptions is New with a rate limit and clock of the caller's choice.
func NewWithOptions(clients []config.Client, roles []config.Role, opts Options) (*Authenticator, error) {
	entries, err := compile(clients, roles)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{now: opts.Now}
	a.lim.cfg = opts.RateLimit.withDefaults()
	a.configured = entries
	a.storeLocked()
	return a, nil
}

// AddClient lets a token whose hash is tokenHash (as HashToken returns it)
// authenticate as c. callctl uses it for the bootstrap admin and for
// CALLCTL_ADMIN_TOKEN; such clients outlive Replace. It does not check c's name against other clients'.
// A malformed tokenHash or a nil c is a programming error and panics.
func (a *Authenticator) AddClient(c *Client, tokenHash string) {
	h, ok := parseHash(tokenHash)
	if !ok || c == nil {
		panic("auth: AddClient needs a client and a hash made by HashToken")
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	a.added = append(a.added, entry{hash: h, client: c})
	a.storeLocked()
}

// Authenticate returns the client whose token this is. source is the
// address the request came from; failures are counted per source (IPv4
// address, or IPv6 /64, since one host usually holds a whole /64), and a
// source over the limit gets a *RateLimitError for every wrong token until
// its lockout ends. A right token always authenticates, even from a source
// that is locked out: the lockout slows guessing, it must not let a
// guesser sharing an address (a NAT, a proxy) lock the real client out.
// Attempts during a lockout are not counted. An empty token is ErrNoToken
// and not counted either.
func (a *Authenticator) Authenticate(token string, source netip.Addr) (*Client, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	sum := sha256.Sum256([]byte(token))
	var entries []entry
	if p := a.entries.Load(); p != nil {
		entries = *p
	}
	key := sourceKey(source)

	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.now != nil {
		now = a.now()
	}
	// The match runs whether or not the source is locked out, so a locked
	// source learns nothing from how long a refusal takes either.
	c := a.match(sum, entries)
	if c != nil {
		return c, nil
	}
	if wait, locked := a.lim.locked(key, now); locked {
		return nil, &RateLimitError{RetryAfter: wait}
	}
	a.lim.fail(key, now)
	return nil, ErrBadToken
}

// match compares sum with every entry's hash in constant time and without
// stopping at a match, so the time taken tells nothing about which client,
// if any, matched. The first match wins.
func (a *Authenticator) match(sum [sha256.Size]byte, entries []entry) *Client {
	compare := a.compare
	if compare == nil {
		compare = subtle.ConstantTimeCompare
	}
	found, idx := 0, 0
	for i := range entries {
		eq := compare(sum[:], entries[i].hash[:])
		idx = subtle.ConstantTimeSelect(eq&^found, i, idx)
		found |= eq
	}
	if found == 0 {
		return nil
	}
	return entries[idx].client
}

// sourceKey is the rate limiter's bucket for an address: the IPv4 address
// or the IPv6 /64. An invalid address gets the zero prefix, one bucket for
// all of them.
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

const hashPrefix = "sha256:"

// parseHash reads "sha256:" + 64 lowercase hex digits.
func parseHash(s string) (h [sha256.Size]byte, ok bool) {
	hx, found := strings.CutPrefix(s, hashPrefix)
	if !found || len(hx) != 2*sha256.Size || strings.ToLower(hx) != hx {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(hx)); err != nil {
		return h, false
	}
	return h, true
}

// compile checks clients and roles and builds the token table.
func compile(clients []config.Client, roles []config.Role) ([]entry, error) {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &config.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	roleIndex := map[string]int{}
	rolePrivs := map[string]privSet{}
	roleTargets := map[string][]string{}
	for i, r := range roles {
		key := fmt.Sprintf("roles[%d]", i)
		switch j, dup := roleIndex[r.Name]; {
		case r.Name == "":
			add(key+".name", "empty; give the role a name clients can list in their roles")
		case dup:
			add(key+".name", "%q is already defined at roles[%d]", r.Name, j)
		default:
			roleIndex[r.Name] = i
		}
		var set privSet
		for j, p := range r.Privileges {
			b, ok := privBit(Privilege(p))
			if !ok {
				add(fmt.Sprintf("%s.privileges[%d]", key, j), "%q is not a privilege (allowed: %s)", p, allowedList)
			}
			set |= b
		}
		for j, p := range r.Targets {
			if _, err := compileScope(p); err != nil {
				add(fmt.Sprintf("%s.targets[%d]", key, j), "%v", err)
			}
		}
		if _, ok := rolePrivs[r.Name]; !ok {
			rolePrivs[r.Name] = set
			roleTargets[r.Name] = r.Targets
		}
	}
	roleNames := make([]string, 0, len(roleIndex))
	for n := range roleIndex {
		roleNames = append(roleNames, n)
	}
	sort.Strings(roleNames)

	var entries []entry
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	for i, cc := range clients {
		key := fmt.Sprintf("clients[%d]", i)
		c := &Client{Name: cc.Name}
		switch j, dup := names[cc.Name]; {
		case cc.Name == "":
			add(key+".name", "empty; give the client a name (it identifies it in logs and the audit trail)")
		case dup:
			add(key+".name", "%q is already used by clients[%d]", cc.Name, j)
		case strings.IndexFunc(cc.Name, unicode.IsControl) >= 0:
			add(key+".name", "%q contains control characters; use one line of printable text", cc.Name)
		default:
			names[cc.Name] = i
		}

		// The value is never echoed: it may be a token pasted by mistake.
		h, ok := parseHash(cc.TokenHash)
		switch j, dup := hashes[h]; {
		case cc.TokenHash == "":
			add(key+".token_hash", "empty; give \"sha256:\" and 64 lowercase hex digits (`callctl token new` prints a token and its hash)")
		case strings.HasPrefix(cc.TokenHash, tokenPrefix):
			add(key+".token_hash", "holds a token, not its hash; store only \"sha256:\" and the hex SHA-256 of the token (`callctl token new` prints both) and treat this token as leaked")
		case !ok:
			add(key+".token_hash", "not \"sha256:\" followed by 64 lowercase hex digits (`callctl token new` prints a token and its hash)")
		case dup:
			add(key+".token_hash", "same hash as clients[%d]; each client needs its own token", j)
		default:
			hashes[h] = i
		}

		for j, p := range cc.Privileges {
			b, ok := privBit(Privilege(p))
			if !ok {
				add(fmt.Sprintf("%s.privileges[%d]", key, j), "%q is not a privilege (allowed: %s)", p, allowedList)
			}
			c.privs |= b
		}
		for j, r := range cc.Roles {
			set, ok := rolePrivs[r]
			if !ok || r == "" {
				defined := "no roles are defined"
				if len(roleNames) > 0 {
					defined = "defined: " + strings.Join(roleNames, ", ")
				}
				add(fmt.Sprintf("%s.roles[%d]", key, j), "%q is not a role (%s)", r, defined)
			}
			c.privs |= set
		}
		for j, p := range cc.Targets {
			if err := c.addTarget(p); err != nil {
				add(fmt.Sprintf("%s.targets[%d]", key, j), "%v", err)
			}
		}
		for _, r := range cc.Roles {
			for _, p := range roleTargets[r] {
				_ = c.addTarget(p) // reported at roles[i].targets[j]
			}
		}
		for j, s := range cc.Scope {
			re, err := compileScope(s)
			if err != nil {
				add(fmt.Sprintf("%s.scope[%d]", key, j), "%v", err)
				continue
			}
			c.scope = append(c.scope, re)
			c.patterns = append(c.patterns, s)
		}
		entries = append(entries, entry{hash: h, client: c})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return entries, nil
}
