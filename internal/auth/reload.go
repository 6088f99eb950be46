package auth

import (
	"slices"
	"sort"

	"github.com/callctl/callctl/internal/config"
)

// Table is a checked, compiled set of configured clients, ready for
// Authenticator.Replace. Compiling it apart from the swap lets a reload
// check every part of a new configuration before it changes any.
type Table struct {
	entries []entry
}

// Compile checks clients and roles as New does, reporting every problem at
// once (each a *config.FieldError naming its key), and returns their table.
func Compile(clients []config.Client, roles []config.Role) (*Table, error) {
	entries, err := compile(clients, roles)
	if err != nil {
		return nil, err
	}
	return &Table{entries: entries}, nil
}

// Change is what Replace did to the configured clients, by name.
type Change struct {
	Added, Removed, Changed []string
}

// Empty reports whether the clients were left as they were.
func (c Change) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// Replace makes t the configured clients, at once: a request authenticated
// before it got the old client, one after it the new one, never a mix.
// Clients added with AddClient (the bootstrap admin, CALLCTL_ADMIN_TOKEN)
// stay. A client whose name, token hash, privileges, scope and targets are
// all unchanged keeps its very *Client, so Knows still holds for it and
// its open event streams go on; a client removed or changed is a new
// *Client or none (Knows is false for the old one). The rate limiter's
// state is kept: a reload does not forgive a guesser.
func (a *Authenticator) Replace(t *Table) Change {
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	old := map[string]entry{}
	for _, e := range a.configured {
		old[e.client.Name] = e
	}
	next := make([]entry, len(t.entries))
	var ch Change
	seen := map[string]bool{}
	for i, e := range t.entries {
		seen[e.client.Name] = true
		prev, ok := old[e.client.Name]
		switch {
		case !ok:
			ch.Added = append(ch.Added, e.client.Name)
		case prev.hash == e.hash && sameRights(prev.client, e.client):
			e.client = prev.client
		default:
			ch.Changed = append(ch.Changed, e.client.Name)
		}
		next[i] = e
	}
	for name := range old {
		if !seen[name] {
			ch.Removed = append(ch.Removed, name)
		}
	}
	sort.Strings(ch.Added)
	sort.Strings(ch.Removed)
	sort.Strings(ch.Changed)
	a.configured = next
	a.storeLocked()
	return ch
}

// Knows reports whether c is one of the clients a token authenticates as
// now: false for a client a Replace removed or changed, whose holders
// (event streams) should stop using it.
func (a *Authenticator) Knows(c *Client) bool {
	if c == nil {
		return false
	}
	p := a.entries.Load()
	if p == nil {
		return false
	}
	for i := range *p {
		if (*p)[i].client == c {
			return true
		}
	}
	return false
}

// storeLocked publishes configured followed by added as one new table.
// The caller holds writeMu.
func (a *Authenticator) storeLocked() {
	next := make([]entry, 0, len(a.configured)+len(a.added))
	next = append(next, a.configured...)
	next = append(next, a.added...)
	a.entries.Store(&next)
}

// sameRights reports whether two clients may do and see the same things.
func sameRights(x, y *Client) bool {
	return x.Name == y.Name && x.privs == y.privs &&
		slices.Equal(x.patterns, y.patterns) && slices.Equal(x.targetPatterns, y.targetPatterns)
}
