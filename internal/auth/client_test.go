package auth

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/callctl/callctl/internal/config"
)

// hashOf is a valid, distinct token_hash for client i of a test config.
func hashOf(i int) string { return HashToken(fmt.Sprintf("token-%d", i)) }

func TestNewGrantsOwnAndRolePrivileges(t *testing.T) {
	roles := []config.Role{
		{Name: "supervisor", Privileges: []string{"sessions.view", "sessions.hold", "sessions.transfer"}},
		{Name: "auditor", Privileges: []string{"audit.view", "sessions.view"}},
	}
	tests := []struct {
		name       string
		privileges []string
		roles      []string
		want       []Privilege
	}{
		{"nothing", nil, nil, nil},
		{"own only", []string{"sessions.hangup", "sessions.dtmf"}, nil, []Privilege{SessionsDTMF, SessionsHangup}},
		{"role only", nil, []string{"supervisor"}, []Privilege{SessionsHold, SessionsTransfer, SessionsView}},
		{"two roles overlap", nil, []string{"supervisor", "auditor"}, []Privilege{AuditView, SessionsHold, SessionsTransfer, SessionsView}},
		{"own and role", []string{"sessions.listen"}, []string{"auditor"}, []Privilege{AuditView, SessionsListen, SessionsView}},
		{"repeated privilege", []string{"sessions.view", "sessions.view"}, nil, []Privilege{SessionsView}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New([]config.Client{{Name: "c", TokenHash: hashOf(0), Privileges: tt.privileges, Roles: tt.roles}}, roles)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			c, err := a.Authenticate("token-0", testAddr)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if got := c.Privileges(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Privileges() = %v, want %v", got, tt.want)
			}
			for _, p := range AllPrivileges {
				want := false
				for _, w := range tt.want {
					want = want || w == p
				}
				if got := c.Can(p); got != want {
					t.Errorf("Can(%s) = %v, want %v", p, got, want)
				}
			}
		})
	}
}

func TestNewNamesTheKeyOfEachProblem(t *testing.T) {
	good := func() config.Client {
		return config.Client{Name: "ok", TokenHash: hashOf(0), Privileges: []string{"sessions.view"}}
	}
	roles := []config.Role{{Name: "supervisor", Privileges: []string{"sessions.hold"}}}
	tests := []struct {
		name    string
		clients []config.Client
		roles   []config.Role
		key     string
		msg     string
	}{
		{"unknown privilege", []config.Client{good(), {Name: "b", TokenHash: hashOf(1), Privileges: []string{"sessions.view", "sessions.holdd"}}}, roles,
			"clients[1].privileges[1]", `"sessions.holdd" is not a privilege (allowed: sessions.view, sessions.hold, sessions.transfer, sessions.forward, sessions.hangup, sessions.dtmf, sessions.listen, audit.view, config.reload)`},
		{"unknown role", []config.Client{{Name: "b", TokenHash: hashOf(1), Roles: []string{"supervisr"}}}, roles,
			"clients[0].roles[0]", `"supervisr" is not a role (defined: supervisor)`},
		{"role without roles", []config.Client{{Name: "b", TokenHash: hashOf(1), Roles: []string{"supervisor"}}}, nil,
			"clients[0].roles[0]", `"supervisor" is not a role (no roles are defined)`},
		{"unknown role privilege", []config.Client{good()}, []config.Role{{Name: "r", Privileges: []string{"audit.vew"}}},
			"roles[0].privileges[0]", `"audit.vew" is not a privilege (allowed: sessions.view,`},
		{"empty role name", []config.Client{good()}, []config.Role{{Privileges: []string{"audit.view"}}},
			"roles[0].name", "empty"},
		{"duplicate role", []config.Client{good()}, []config.Role{{Name: "r"}, {Name: "r"}},
			"roles[1].name", `"r" is already defined at roles[0]`},
		{"empty name", []config.Client{{TokenHash: hashOf(1)}}, nil,
			"clients[0].name", "empty"},
		{"duplicate name", []config.Client{good(), {Name: "ok", TokenHash: hashOf(1)}}, nil,
			"clients[1].name", `"ok" is already used by clients[0]`},
		{"name with newline", []config.Client{{Name: "a\nb", TokenHash: hashOf(1)}}, nil,
			"clients[0].name", "control characters"},
		{"no hash", []config.Client{{Name: "b"}}, nil,
			"clients[0].token_hash", "empty"},
		{"upper-case hex", []config.Client{{Name: "b", TokenHash: strings.ToUpper(hashOf(1)[7:])}}, nil,
			"clients[0].token_hash", `not "sha256:" followed by 64 lowercase hex digits`},
		{"short hash", []config.Client{{Name: "b", TokenHash: hashOf(1)[:70]}}, nil,
			"clients[0].token_hash", `not "sha256:" followed by 64 lowercase hex digits`},
		{"other algorithm", []config.Client{{Name: "b", TokenHash: "md5:" + hashOf(1)[7:]}}, nil,
			"clients[0].token_hash", `not "sha256:"`},
		{"token instead of hash", []config.Client{{Name: "b", TokenHash: "cc_abc"}}, nil,
			"clients[0].token_hash", "holds a token, not its hash"},
		{"shared hash", []config.Client{good(), {Name: "b", TokenHash: hashOf(0)}}, nil,
			"clients[1].token_hash", "same hash as clients[0]"},
		{"scope does not compile", []config.Client{{Name: "b", TokenHash: hashOf(1), Scope: []string{`1\d+`, `1(`}}}, nil,
			"clients[0].scope[1]", `"1(" is not a regular expression`},
		{"scope escapes anchoring", []config.Client{{Name: "b", TokenHash: hashOf(1), Scope: []string{`1)|(.*`}}}, nil,
			"clients[0].scope[0]", "is not a regular expression"},
		{"empty scope pattern", []config.Client{{Name: "b", TokenHash: hashOf(1), Scope: []string{""}}}, nil,
			"clients[0].scope[0]", "empty pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.clients, tt.roles)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if a != nil {
				t.Error("New returned an Authenticator with an error")
			}
			errs := fieldErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), err)
			}
			if errs[0].Key != tt.key || !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("error = %q, want key %s with %q", errs[0], tt.key, tt.msg)
			}
		})
	}
}

func TestNewReportsAllProblemsAtOnce(t *testing.T) {
	_, err := New([]config.Client{
		{Name: "", TokenHash: "nope", Privileges: []string{"x"}, Roles: []string{"y"}, Scope: []string{"("}},
		{Name: "b", TokenHash: hashOf(1), Privileges: []string{"sessions.view", "z"}},
	}, []config.Role{{Name: "r", Privileges: []string{"w"}}})
	var keys []string
	for _, e := range fieldErrors(t, err) {
		keys = append(keys, e.Key)
	}
	want := []string{"roles[0].privileges[0]", "clients[0].name", "clients[0].token_hash", "clients[0].privileges[0]",
		"clients[0].roles[0]", "clients[0].scope[0]", "clients[1].privileges[1]"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("error keys = %v, want %v", keys, want)
	}
}

func TestNewNeverEchoesTokenHash(t *testing.T) {
	for _, secret := range []string{"cc_" + strings.Repeat("s", 43), "hunter2-is-my-token"} {
		_, err := New([]config.Client{{Name: "b", TokenHash: secret}}, nil)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("error %v shows the token_hash value", err)
		}
	}
}

func TestNewAcceptsNoClients(t *testing.T) {
	a, err := New(nil, nil)
	if err != nil {
		t.Fatalf("New(nil, nil): %v", err)
	}
	if _, err := a.Authenticate("anything", testAddr); !errors.Is(err, ErrBadToken) {
		t.Errorf("Authenticate with no clients = %v, want ErrBadToken", err)
	}
}

// fieldErrors unpacks errors.Join's result into its *config.FieldErrors.
func fieldErrors(t *testing.T, err error) []*config.FieldError {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not errors.Join's", err)
	}
	var out []*config.FieldError
	for _, e := range joined.Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *config.FieldError", e)
		}
		out = append(out, fe)
	}
	return out
}

func TestInScopeMatchesWholeNumbersOfCallerOrCallee(t *testing.T) {
	tests := []struct {
		name    string
		scope   []string
		numbers []string
		want    bool
	}{
		{"no scope sees all", nil, []string{"999"}, true},
		{"no scope, no numbers", nil, nil, true},
		{"caller matches", []string{`1\d{3}`}, []string{"1234", "5555"}, true},
		{"callee matches", []string{`1\d{3}`}, []string{"5555", "1234"}, true},
		{"neither matches", []string{`1\d{3}`}, []string{"5555", "6666"}, false},
		{"longer number is not a match", []string{`1\d{3}`}, []string{"12345"}, false},
		{"number containing a match is not a match", []string{`1\d{3}`}, []string{"91234"}, false},
		{"alternation stays anchored", []string{`10|20`}, []string{"100"}, false},
		{"alternation matches whole", []string{`10|20`}, []string{"20"}, true},
		{"second pattern matches", []string{`1\d{3}`, `\+4930\d+`}, []string{"+49301234"}, true},
		{"scoped client, no numbers", []string{`.*`}, nil, false},
		{"scoped client, anonymous caller", []string{`1\d{3}`}, []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New([]config.Client{{Name: "c", TokenHash: hashOf(0), Scope: tt.scope}}, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			c, err := a.Authenticate("token-0", testAddr)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if got := c.InScope(tt.numbers...); got != tt.want {
				t.Errorf("InScope(%q) with scope %q = %v, want %v", tt.numbers, tt.scope, got, tt.want)
			}
			if got := c.Scope(); !reflect.DeepEqual(got, tt.scope) {
				t.Errorf("Scope() = %q, want %q", got, tt.scope)
			}
		})
	}
}

func TestNilClientMayDoNothing(t *testing.T) {
	var c *Client
	if c.Can(SessionsView) || c.InScope("1") || c.Privileges() != nil || c.Scope() != nil {
		t.Error("a nil client has a privilege or a scope")
	}
}

func TestNewAdminHoldsEveryPrivilegeAndNoScope(t *testing.T) {
	c := NewAdmin()
	if c.Name != "admin" {
		t.Errorf("Name = %q, want admin", c.Name)
	}
	for _, p := range AllPrivileges {
		if !c.Can(p) {
			t.Errorf("admin cannot %s", p)
		}
	}
	if len(c.Privileges()) != len(AllPrivileges) {
		t.Errorf("Privileges() = %v, want all %d", c.Privileges(), len(AllPrivileges))
	}
	if !c.InScope("anything") || c.Scope() != nil {
		t.Error("admin has a scope")
	}
	if c.Can("sessions.everything") {
		t.Error("admin can an unknown privilege")
	}
}

func TestNewClient(t *testing.T) {
	c, err := NewClient("ops", []Privilege{SessionsHold, SessionsView}, []string{`2\d\d`})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if !c.Can(SessionsHold) || c.Can(SessionsHangup) || !c.InScope("200") || c.InScope("2000") {
		t.Errorf("NewClient made %+v", c)
	}
	if _, err := NewClient("x", []Privilege{"sessions.holdd"}, nil); err == nil || !strings.Contains(err.Error(), "allowed: sessions.view") {
		t.Errorf("NewClient with an unknown privilege: %v", err)
	}
	if _, err := NewClient("x", nil, []string{"("}); err == nil {
		t.Error("NewClient with a bad scope succeeded")
	}
}

func TestParsePrivilege(t *testing.T) {
	for _, p := range AllPrivileges {
		if got, err := ParsePrivilege(string(p)); got != p || err != nil {
			t.Errorf("ParsePrivilege(%q) = %q, %v", p, got, err)
		}
	}
	for _, s := range []string{"", "sessions", "Sessions.View", "sessions.view "} {
		if _, err := ParsePrivilege(s); err == nil || !strings.Contains(err.Error(), "allowed: ") {
			t.Errorf("ParsePrivilege(%q) = %v, want an error listing the allowed ones", s, err)
		}
	}
}

func TestAllPrivilegesIsACopy(t *testing.T) {
	saved := AllPrivileges[0]
	AllPrivileges[0] = "changed"
	defer func() { AllPrivileges[0] = saved }()
	if !NewAdmin().Can(SessionsView) {
		t.Error("changing AllPrivileges changed the package's privileges")
	}
}
