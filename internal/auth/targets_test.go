package auth

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/callctl/callctl/internal/config"
)

// A client's targets and those of its roles add up; each matches a whole
// number; with none anywhere the client may use any number.
func TestTargetsLimitWholeNumbersFromClientAndRoles(t *testing.T) {
	roles := []config.Role{
		{Name: "agents", Privileges: []string{"sessions.transfer"}, Targets: []string{`3\d{3}`}},
		{Name: "plain", Privileges: []string{"sessions.view"}},
	}
	clients := []config.Client{
		{Name: "own", TokenHash: hashOf(0), Targets: []string{`2\d{3}`, `\+4930\d+`}},
		{Name: "role", TokenHash: hashOf(1), Roles: []string{"agents"}},
		{Name: "both", TokenHash: hashOf(2), Targets: []string{`2\d{3}`}, Roles: []string{"agents", "plain"}},
		{Name: "free", TokenHash: hashOf(3), Roles: []string{"plain"}},
	}
	a, err := New(clients, roles)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, tt := range []struct {
		token   int
		targets []string
		may     []string
		mayNot  []string
	}{
		{0, []string{`2\d{3}`, `\+4930\d+`}, []string{"2001", "+4930123"}, []string{"3001", "20011", "92001", "", "2001|x"}},
		{1, []string{`3\d{3}`}, []string{"3999"}, []string{"2001", "39999"}},
		{2, []string{`2\d{3}`, `3\d{3}`}, []string{"2001", "3001"}, []string{"4001"}},
		{3, nil, []string{"2001", "999", "anything"}, nil},
	} {
		c, err := a.Authenticate(hashTokenName(tt.token), testAddr)
		if err != nil {
			t.Fatalf("Authenticate(token-%d): %v", tt.token, err)
		}
		if got := c.Targets(); !slices.Equal(got, tt.targets) {
			t.Errorf("%s: Targets() = %q; want %q", c.Name, got, tt.targets)
		}
		for _, n := range tt.may {
			if !c.MayTarget(n) {
				t.Errorf("%s: MayTarget(%q) = false; want true", c.Name, n)
			}
		}
		for _, n := range tt.mayNot {
			if c.MayTarget(n) {
				t.Errorf("%s: MayTarget(%q) = true; want false", c.Name, n)
			}
		}
	}
	var nilClient *Client
	if nilClient.MayTarget("2001") {
		t.Error("a nil client may target 2001; want nothing")
	}
}

func hashTokenName(i int) string { return fmt.Sprintf("token-%d", i) }

func TestTargetsPatternsAreCheckedNamingTheirKey(t *testing.T) {
	_, err := New(
		[]config.Client{{Name: "c", TokenHash: hashOf(0), Targets: []string{`2\d+`, "1("}}},
		[]config.Role{{Name: "r", Targets: []string{""}}})
	for _, want := range []string{`clients[0].targets[1]: "1(" is not a regular expression`, "roles[0].targets[0]: empty pattern"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v; want it to report %q", err, want)
		}
	}
}

func TestWithTargetsCopiesTheClient(t *testing.T) {
	c, err := NewClient("c", []Privilege{SessionsTransfer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.WithTargets([]string{`2\d{3}`})
	if err != nil {
		t.Fatal(err)
	}
	if !c.MayTarget("9") || r.MayTarget("9") || !r.MayTarget("2001") || !r.Can(SessionsTransfer) {
		t.Errorf("WithTargets: original may 9 = %v, copy may 9 = %v, copy may 2001 = %v; want true, false, true", c.MayTarget("9"), r.MayTarget("9"), r.MayTarget("2001"))
	}
	if _, err := c.WithTargets([]string{"("}); err == nil {
		t.Error("WithTargets((): nil error; want the pattern refused")
	}
}
