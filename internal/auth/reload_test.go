package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/callctl/callctl/internal/config"
)

func mustCompile(t *testing.T, clients []config.Client, roles []config.Role) *Table {
	t.Helper()
	tab, err := Compile(clients, roles)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// Replace adds, removes and changes configured clients by name; an
// unchanged client keeps its *Client (Knows stays true), a changed or
// removed one does not; AddClient's clients survive it.
func TestReplaceSwapsConfiguredClientsAndKeepsUnchangedOnes(t *testing.T) {
	roles := []config.Role{{Name: "sup", Privileges: []string{"sessions.view", "sessions.hold"}}}
	a, err := New([]config.Client{
		{Name: "keep", TokenHash: hashOf(0), Roles: []string{"sup"}},
		{Name: "drop", TokenHash: hashOf(1), Privileges: []string{"sessions.view"}},
		{Name: "alter", TokenHash: hashOf(2), Privileges: []string{"sessions.view"}},
	}, roles)
	if err != nil {
		t.Fatal(err)
	}
	a.AddClient(NewAdmin(), hashOf(9))
	auth := func(i int) *Client {
		c, _ := a.Authenticate(fmt.Sprintf("token-%d", i), testAddr)
		return c
	}
	keep, drop, alter, admin := auth(0), auth(1), auth(2), auth(9)

	ch := a.Replace(mustCompile(t, []config.Client{
		{Name: "keep", TokenHash: hashOf(0), Roles: []string{"sup"}},
		{Name: "alter", TokenHash: hashOf(2), Privileges: []string{"sessions.view"}, Scope: []string{`1\d{3}`}},
		{Name: "new", TokenHash: hashOf(3), Privileges: []string{"audit.view"}},
	}, roles))
	want := Change{Added: []string{"new"}, Removed: []string{"drop"}, Changed: []string{"alter"}}
	if !slices.Equal(ch.Added, want.Added) || !slices.Equal(ch.Removed, want.Removed) || !slices.Equal(ch.Changed, want.Changed) {
		t.Errorf("Replace = %+v; want %+v", ch, want)
	}
	if got := auth(0); got != keep || !a.Knows(keep) {
		t.Error("the unchanged client is not the same *Client after Replace")
	}
	if got := auth(1); got != nil || a.Knows(drop) {
		t.Errorf("the removed client's token still authenticates (%v) or Knows it", got)
	}
	if got := auth(2); got == nil || got == alter || a.Knows(alter) || !got.InScope("1234") || got.InScope("5678") {
		t.Errorf("the changed client is %+v; want a new *Client with the new scope, the old one unknown", got)
	}
	if got := auth(3); got == nil || !got.Can(AuditView) {
		t.Errorf("the added client's token → %v; want it with audit.view", got)
	}
	if got := auth(9); got != admin || !a.Knows(admin) {
		t.Error("the AddClient admin did not survive Replace")
	}
	if ch := a.Replace(mustCompile(t, []config.Client{
		{Name: "keep", TokenHash: hashOf(0), Roles: []string{"sup"}},
	}, []config.Role{{Name: "sup", Privileges: []string{"sessions.view"}}})); !slices.Equal(ch.Changed, []string{"keep"}) {
		t.Errorf("a role losing a privilege: Replace = %+v; want keep changed", ch)
	}
	if c := auth(0); c == nil || c.Can(SessionsHold) {
		t.Error("after its role lost sessions.hold the client still holds it")
	}
}

// Compile reports problems as New does, naming the key, and never echoes
// a token hash.
func TestCompileNamesTheFieldAndHidesTheHash(t *testing.T) {
	_, err := Compile([]config.Client{{Name: "x", TokenHash: "sha256:secret-ish"}}, nil)
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Key != "clients[0].token_hash" {
		t.Fatalf("Compile: %v; want a FieldError for clients[0].token_hash", err)
	}
	if got := err.Error(); strings.Contains(got, "secret-ish") {
		t.Errorf("error %q echoes the hash", got)
	}
}

// Requests authenticating while tables are swapped back and forth never
// see a half-built table: the token of a client present in both always
// authenticates as that client (and -race finds no unsynchronised access).
func TestAuthenticateDuringReplaceSeesOneTableOrTheOther(t *testing.T) {
	one := []config.Client{{Name: "both", TokenHash: hashOf(0), Privileges: []string{"sessions.view"}}, {Name: "first", TokenHash: hashOf(1)}}
	two := []config.Client{{Name: "both", TokenHash: hashOf(0), Privileges: []string{"sessions.view"}}, {Name: "second", TokenHash: hashOf(2)}}
	a, err := New(one, nil)
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := mustCompile(t, one, nil), mustCompile(t, two, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				a.Replace(t2)
			} else {
				a.Replace(t1)
			}
		}
	}()
	for range 2000 {
		if c, err := a.Authenticate("token-0", testAddr); err != nil || c.Name != "both" {
			t.Fatalf("the client in both tables: %v, %v", c, err)
		}
	}
	close(stop)
	wg.Wait()
}
