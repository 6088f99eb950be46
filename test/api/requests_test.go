package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
)

// One live SIPp call through callctl, on which the stories below act.
func TestRequestsOnALiveCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)
	s := startServer(t, nil, func(cfg *config.Config) { cfg.Routes = []config.Route{routeTo("2001", uas)} })
	c := s.dial(t, uas, dir, "1001", "2001")

	// Malformed JSON, unknown fields, oversized bodies and wrong types are
	// each refused with 400 invalid_argument and a message naming the
	// problem (the field, for unknown fields and wrong types); the call is
	// untouched and neither party receives anything.
	t.Run("bad bodies are refused by name and touch nothing", func(t *testing.T) {
		op := "/api/v1/sessions/" + c.id + "/"
		huge := `{"transferor":"1001","target":"` + strings.Repeat("9", 17<<10) + `"}`
		for _, tc := range []struct {
			name, path, body string
			want             []string // in the message
		}{
			{"malformed JSON", op + "forward", `{"target": "2999"`, []string{"JSON"}},
			{"not JSON at all", op + "forward", `target=2999`, []string{"JSON"}},
			{"unquoted name", op + "transfer", `{transferor: "1001", "target": "2999"}`, []string{"JSON"}},
			{"unknown field", op + "forward", `{"target":"2999","priority":"high"}`, []string{`"priority"`, "target"}},
			{"unknown field where none are taken", op + "hold", `{"force":true}`, []string{`"force"`}},
			{"misspelt field", op + "dtmf", `{"keys":"5","partie":"2001"}`, []string{`"partie"`, "party"}},
			{"oversized body", op + "transfer", huge, []string{"16384"}},
			{"wrong type: number for a string", op + "forward", `{"target": 5}`, []string{`"target"`, "string"}},
			{"wrong type: array for a string", op + "dtmf", `{"key":["5"],"party":"2001"}`, []string{`"key"`, "string"}},
			{"wrong type: object for a string", op + "transfer", `{"transferor":{"n":1001},"target":"2999"}`, []string{`"transferor"`, "string"}},
			{"an array, not an object", op + "forward", `["2999"]`, []string{"object"}},
			{"data after the object", op + "forward", `{"target":"2999"} {"target":"2998"}`, []string{"after"}},
		} {
			r := s.do(t, adminToken, "POST", tc.path, tc.body)
			e := r.expectError(t, http.StatusBadRequest, "invalid_argument")
			for _, w := range tc.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("%s: message %q does not name %s", tc.name, e.Message, w)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
		if got := methods(received(c.uac)); len(got) != 0 {
			t.Errorf("after the refused requests the caller received %v; want nothing", got)
		}
		if got := methods(received(c.uas)); !slices.Equal(got, []string{"INVITE", "ACK"}) {
			t.Errorf("after the refused requests the callee received %v; want only the call's INVITE, ACK", got)
		}
		if v := s.session(t, c.id); v.State != "IN_CALL" {
			t.Errorf("after the refused requests the session is %s; want IN_CALL", v.State)
		}
	})

	t.Run("a state filter that is no state is refused naming the states", func(t *testing.T) {
		e := s.do(t, adminToken, "GET", "/api/v1/sessions?state=XYZ", "").expectError(t, http.StatusBadRequest, "invalid_argument")
		for _, w := range []string{"XYZ", "IN_CALL", "ON_HOLD", "TRANSFERRING", "HUNG_UP", "CLOSED"} {
			if !strings.Contains(e.Message, w) {
				t.Errorf("message %q does not name %s", e.Message, w)
			}
		}
		if got := s.sessions(t, "admin", "?state=IN_CALL"); len(got) != 1 || got[0].ID != c.id {
			t.Errorf("GET /api/v1/sessions?state=IN_CALL → %+v; want session %s", got, c.id)
		}
		if got := s.sessions(t, "admin", "?state=ON_HOLD"); len(got) != 0 {
			t.Errorf("GET /api/v1/sessions?state=ON_HOLD → %+v; want none", got)
		}
	})

	t.Run("health is open; metrics count sessions and operations", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			if r := s.do(t, "", "GET", path, ""); r.status != http.StatusOK {
				t.Errorf("%v without a token; want 200", r)
			}
		}
		s.do(t, "", "GET", "/metrics", "").expectError(t, http.StatusUnauthorized, "unauthenticated")

		operate(t, s, c, "admin", "hold", "", "ON_HOLD")
		r := s.do(t, adminToken, "GET", "/metrics", "")
		if r.status != http.StatusOK {
			t.Fatalf("%v; want 200", r)
		}
		text := string(r.body)
		for _, want := range []string{
			`(?m)^callctl_sessions\{state="ON_HOLD"\} 1$`,
			`(?m)^callctl_sessions\{state="IN_CALL"\} 0$`,
			`(?m)^callctl_operations_total\{operation="hold",result="ok"\} 1$`,
			`(?m)^callctl_api_request_duration_seconds_count\{route="POST /api/v1/sessions/\{id\}/hold"\} [1-9]`,
		} {
			if !regexp.MustCompile(want).MatchString(text) {
				t.Errorf("/metrics has no line matching %s; it says:\n%s", want, text)
			}
		}
	})

	// The issue asks for SIP responses by code among the metrics.
	t.Run("metrics count SIP responses by code", func(t *testing.T) {
		r := s.do(t, adminToken, "GET", "/metrics", "")
		if !regexp.MustCompile(`(?m)^callctl_sip_responses_total\{.*code="200".*\} [1-9]`).Match(r.body) {
			families := regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllStringSubmatch(string(r.body), -1)
			var names []string
			for _, f := range families {
				names = append(names, f[1])
			}
			t.Errorf("/metrics has no callctl_sip_responses_total{code=\"200\"} for the 200s of this call; its metrics are %v", names)
		}
	})

	hangupIfLive(t, s, c)
	c.uac.ExpectPass(t, 10*time.Second)
	c.uas.ExpectPass(t, 10*time.Second)
}
