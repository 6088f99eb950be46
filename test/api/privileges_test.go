package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
)

// route is one API route that acts on a session, with a body a client may
// well send it. {id}, {caller} and {callee} are filled in per call.
type route struct {
	method, path, body string
	priv               auth.Privilege
}

func (r route) String() string { return r.method + " " + r.path }

// fill replaces the placeholders for a session.
func fill(s, id, caller, callee string) string {
	return strings.NewReplacer("{id}", id, "{caller}", caller, "{callee}", callee).Replace(s)
}

// operations are the session operations, each with the privilege it needs.
var operations = []route{
	{"POST", "/api/v1/sessions/{id}/hold", "", auth.SessionsHold},
	{"POST", "/api/v1/sessions/{id}/unhold", "", auth.SessionsHold},
	{"POST", "/api/v1/sessions/{id}/transfer", `{"transferor":"{caller}","target":"2999"}`, auth.SessionsTransfer},
	{"POST", "/api/v1/sessions/{id}/forward", `{"target":"2999"}`, auth.SessionsForward},
	{"POST", "/api/v1/sessions/{id}/hangup", "", auth.SessionsHangup},
	{"POST", "/api/v1/sessions/{id}/close", "", auth.SessionsHangup},
	{"POST", "/api/v1/sessions/{id}/close-with-hangup", "", auth.SessionsHangup},
	{"POST", "/api/v1/sessions/{id}/dtmf", `{"key":"5","party":"{callee}"}`, auth.SessionsDTMF},
	{"POST", "/api/v1/sessions/{id}/listen", "", auth.SessionsListen},
	{"DELETE", "/api/v1/sessions/{id}/listen/l1", "", auth.SessionsListen},
}

// privilegeClients are one client per privilege holding every privilege
// but that one ("without-sessions.hold", ...), one holding none
// ("nothing"), and two holding all of them with a scope: "outsider" sees
// only 9xxx numbers (no test call has one), "team-1xxx" the test callers.
func privilegeClients() []clientSpec {
	var out []clientSpec
	for _, p := range auth.AllPrivileges {
		out = append(out, clientSpec{name: without(p), privs: slices.DeleteFunc(slices.Clone(auth.AllPrivileges), func(q auth.Privilege) bool { return q == p })})
	}
	return append(out,
		clientSpec{name: "nothing"},
		clientSpec{name: "outsider", privs: auth.AllPrivileges, scope: []string{`9\d+`}},
		clientSpec{name: "team-1xxx", privs: auth.AllPrivileges, scope: []string{`1\d{3}`}},
	)
}

func without(p auth.Privilege) string { return "without-" + string(p) }

// lacking are the clients that do not hold p.
func lacking(p auth.Privilege) []string { return []string{without(p), "nothing"} }

// Every privileged route × every client, on a session that does not exist
// (so nothing can reach the wire): a client without the route's privilege
// gets 403 forbidden naming the privilege, before anything else is looked
// at; a client with it gets past the check (404 for the unknown session,
// 200 for the lists). Routes that need only a token serve every client.
func TestEveryRouteRefusesEveryClientWithoutItsPrivilege(t *testing.T) {
	t.Parallel()
	s := startServer(t, privilegeClients(), nil)
	routes := append(slices.Clone(operations),
		route{"GET", "/api/v1/sessions", "", auth.SessionsView},
		route{"GET", "/api/v1/sessions/{id}", "", auth.SessionsView},
		route{"GET", "/api/v1/events", "", auth.SessionsView},
		route{"GET", "/api/v1/audit", "", auth.AuditView},
		route{"GET", "/api/v1/calls", "", auth.AuditView},
		route{"POST", "/api/v1/config/reload", "", auth.ConfigReload},
		route{"GET", "/metrics", "", ""},
		route{"GET", "/api/v1/openapi.json", "", ""},
	)
	clients := []string{"nothing"}
	for _, p := range auth.AllPrivileges {
		clients = append(clients, without(p))
	}
	const unknown = "no-such-session"
	for _, rt := range routes {
		for _, client := range clients {
			path := fill(rt.path, unknown, "1001", "2001")
			r := s.do(t, s.tokens[client], rt.method, path, fill(rt.body, unknown, "1001", "2001"))
			if rt.priv != "" && slices.Contains(lacking(rt.priv), client) {
				e := r.expectError(t, http.StatusForbidden, "forbidden")
				if !strings.Contains(e.Message, string(rt.priv)) {
					t.Errorf("%s as %s: message %q does not name the missing privilege %s", rt, client, e.Message, rt.priv)
				}
				continue
			}
			switch {
			case strings.Contains(rt.path, "{id}"):
				r.expectError(t, http.StatusNotFound, "not_found")
			case rt.path == "/api/v1/events":
				// A plain GET is no WebSocket handshake; what matters is
				// that the client got past authentication and privileges.
				if r.status == http.StatusForbidden || r.status == http.StatusUnauthorized {
					t.Errorf("%s as %s: %v; want past the privilege check", rt, client, r)
				}
			default:
				if r.status != http.StatusOK {
					t.Errorf("%s as %s: %v; want 200", rt, client, r)
				}
			}
		}
	}
}

// Seven real calls through callctl, one per operation. On each, every
// client without the operation's privilege is refused every operation with
// 403, and a client whose scope excludes the call gets 404 for the session
// and every operation and does not see it listed; neither SIPp party
// receives anything. Then a client holding the privilege (but lacking some
// other one) performs the operation, and the parties see it on the wire:
// both get re-INVITEs for hold and unhold, the transferee a REFER, the
// caller a REFER for forward, both a BYE for hangup, close and
// close-with-hangup, the callee an INFO for DTMF. At the end each party's
// whole message trace is exactly the call plus that operation. Meanwhile
// the out-of-scope client's event stream carries nothing but its HELLO,
// while a client scoped to the callers gets every call's events.
func TestOperationsHappenOnlyForClientsWithTheirPrivilegeAndScope(t *testing.T) {
	t.Parallel()
	type opCase struct {
		name string
		// by performs the operation: it holds its privilege, not another.
		by       string
		run      func(t *testing.T, s *server, c *call, by string)
		uac, uas []string // every request each party received, in order
	}
	cases := []opCase{
		{name: "hold and unhold", by: without(auth.SessionsView), run: holdAndUnhold,
			uac: []string{"INVITE", "ACK", "INVITE", "ACK", "BYE"},
			uas: []string{"INVITE", "ACK", "INVITE", "ACK", "INVITE", "ACK", "BYE"}},
		{name: "transfer", by: without(auth.SessionsHold), run: transfer,
			uac: []string{"BYE"}, uas: []string{"INVITE", "ACK", "REFER", "BYE"}},
		{name: "forward", by: without(auth.SessionsHangup), run: forward,
			uac: []string{"REFER", "BYE"}, uas: []string{"INVITE", "ACK", "BYE"}},
		{name: "hangup", by: without(auth.SessionsForward), run: ending("hangup", "HUNG_UP"),
			uac: []string{"BYE"}, uas: []string{"INVITE", "ACK", "BYE"}},
		{name: "close", by: without(auth.SessionsDTMF), run: ending("close", "CLOSED"),
			uac: []string{"BYE"}, uas: []string{"INVITE", "ACK", "BYE"}},
		{name: "close-with-hangup", by: without(auth.SessionsListen), run: ending("close-with-hangup", "CLOSED"),
			uac: []string{"BYE"}, uas: []string{"INVITE", "ACK", "BYE"}},
		{name: "dtmf and listen", by: without(auth.AuditView), run: dtmfAndListen,
			uac: []string{"BYE"}, uas: []string{"INVITE", "ACK", "INFO", "BYE"}},
	}

	dirs := make([]string, len(cases))
	callees := make([]*peers.SIPp, len(cases))
	for i := range cases {
		dirs[i] = t.TempDir()
		peers.ToneFile(t, dirs[i], 2, 440)
		callees[i] = callee(t, dirs[i])
	}
	s := startServer(t, privilegeClients(), func(cfg *config.Config) {
		for i, uas := range callees {
			cfg.Routes = append(cfg.Routes, routeTo(fmt.Sprintf("20%02d", i+1), uas))
		}
	})
	outsider := s.openStream(t, s.tokens["outsider"], "")
	team := s.openStream(t, s.tokens["team-1xxx"], "")

	var ids []string
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t, callees[i], dirs[i], fmt.Sprintf("10%02d", i+1), fmt.Sprintf("20%02d", i+1))
			ids = append(ids, c.id)
			// If a check stops the story early, the call still ends (before
			// the caller's SIPp is stopped).
			t.Cleanup(func() { hangupIfLive(t, s, c) })
			refuseEverything(t, s, c)
			tc.run(t, s, c, tc.by)
			hangupIfLive(t, s, c)
			c.uac.ExpectPass(t, 10*time.Second)
			c.uas.ExpectPass(t, 10*time.Second)
			if got := methods(received(c.uac)); !slices.Equal(got, tc.uac) {
				t.Errorf("the caller received %v; want %v", got, tc.uac)
			}
			if got := methods(received(c.uas)); !slices.Equal(got, tc.uas) {
				t.Errorf("the callee received %v; want %v", got, tc.uas)
			}
		})
	}

	// Every refusal is in the audit trail (the same were made on every
	// call: check the first).
	t.Run("refusals are audited", func(t *testing.T) {
		if len(ids) == 0 {
			t.Fatal("no call was made: the operations above failed to set one up")
		}
		expectRefusalsAudited(t, s, ids[0])
	})

	// Every call has ended by now; give the streams a moment for the last
	// events.
	team.waitFor(t, 5*time.Second, "the end of every call", func(msgs []streamMsg) bool {
		for _, id := range ids {
			if !slices.ContainsFunc(msgs, func(m streamMsg) bool { return m.SessionID == id && m.Type == "STATE_CHANGED" && endedState(m.State) }) {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond)
	got := outsider.messages()
	if len(got) != 1 || got[0].Type != "HELLO" {
		t.Errorf("the out-of-scope client's stream carried:\n%swant only its HELLO", describe(got))
	}
}

// endedState reports whether an API state string is an ended one.
func endedState(s string) bool {
	switch s {
	case "TRANSFER_COMPLETED", "CALLER_HUNG_UP", "CALLEE_HUNG_UP", "HUNG_UP", "CLOSED",
		"BUSY", "NOT_FOUND", "NOT_ANSWERED", "CANCELLED", "ERROR", "ABORTED":
		return true
	}
	return false
}

// refuseEverything sends every operation on the live call c as every client
// lacking its privilege (403) and as the out-of-scope client (404), which
// also cannot read or list the session; then it checks that neither party
// received anything and the call is as it was.
func refuseEverything(t *testing.T, s *server, c *call) {
	t.Helper()
	for _, op := range operations {
		path, body := fill(op.path, c.id, c.caller, c.callee), fill(op.body, c.id, c.caller, c.callee)
		for _, client := range lacking(op.priv) {
			e := s.do(t, s.tokens[client], op.method, path, body).expectError(t, http.StatusForbidden, "forbidden")
			if !strings.Contains(e.Message, string(op.priv)) {
				t.Errorf("%s as %s: message %q does not name the missing privilege %s", op, client, e.Message, op.priv)
			}
		}
		s.do(t, s.tokens["outsider"], op.method, path, body).expectError(t, http.StatusNotFound, "not_found")
	}
	s.do(t, s.tokens["outsider"], "GET", "/api/v1/sessions/"+c.id, "").expectError(t, http.StatusNotFound, "not_found")
	listed := func(client string) bool {
		return slices.ContainsFunc(s.sessions(t, client, ""), func(v sessionView) bool { return v.ID == c.id })
	}
	if listed("outsider") {
		t.Errorf("GET /api/v1/sessions as outsider (scope 9\\d+) lists session %s (%s → %s)", c.id, c.caller, c.callee)
	}
	if !listed("team-1xxx") {
		t.Errorf("GET /api/v1/sessions as team-1xxx (scope 1\\d{3}) does not list session %s (%s → %s)", c.id, c.caller, c.callee)
	}

	time.Sleep(300 * time.Millisecond) // anything sent would have arrived
	if got := methods(received(c.uac)); len(got) != 0 {
		t.Errorf("after the refused operations the caller received %v; want nothing", got)
	}
	if got := methods(received(c.uas)); !slices.Equal(got, []string{"INVITE", "ACK"}) {
		t.Errorf("after the refused operations the callee received %v; want only the call's INVITE, ACK", got)
	}
	if v := s.session(t, c.id); v.State != "IN_CALL" {
		t.Errorf("after the refused operations the session is %s; want IN_CALL", v.State)
	}
}

// operate performs op on c as client and expects 200 {"ok":true} with the
// session in state (when state is not "").
func operate(t *testing.T, s *server, c *call, client, op, body, state string) {
	t.Helper()
	r := s.do(t, s.tokens[client], "POST", "/api/v1/sessions/"+c.id+"/"+op, body)
	if r.status != http.StatusOK {
		t.Fatalf("%v as %s; want 200", r, client)
	}
	var res struct {
		OK      bool        `json:"ok"`
		Session sessionView `json:"session"`
	}
	r.decode(t, &res)
	if !res.OK || res.Session.ID != c.id || (state != "" && res.Session.State != state) {
		t.Errorf("%v as %s; want ok and session %s in state %s", r, client, c.id, state)
	}
}

// waitReceived waits until the party's trace has a request of method
// (beyond the first skip of them) that match accepts, and returns it.
func waitReceived(t *testing.T, party string, p *peers.SIPp, method string, skip int, match func(sipMessage) bool) sipMessage {
	t.Helper()
	var found sipMessage
	if !eventually(5*time.Second, func() bool {
		n := 0
		for _, m := range received(p) {
			if m.method() != method {
				continue
			}
			if n++; n > skip && match(m) {
				found = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the %s received no matching %s (beyond the first %d); it received %v", party, method, skip, methods(received(p)))
	}
	return found
}

func holdAndUnhold(t *testing.T, s *server, c *call, by string) {
	operate(t, s, c, by, "hold", "", "ON_HOLD")
	sendonly := func(m sipMessage) bool { return strings.Contains(m.body(), "a=sendonly") }
	waitReceived(t, "caller", c.uac, "INVITE", 0, sendonly)
	waitReceived(t, "callee", c.uas, "INVITE", 1, sendonly)

	operate(t, s, c, without(auth.SessionsTransfer), "unhold", "", "IN_CALL")
	sendrecv := func(m sipMessage) bool { return strings.Contains(m.body(), "a=sendrecv") }
	waitReceived(t, "caller", c.uac, "INVITE", 1, sendrecv)
	waitReceived(t, "callee", c.uas, "INVITE", 2, sendrecv)
}

func transfer(t *testing.T, s *server, c *call, by string) {
	operate(t, s, c, by, "transfer", fmt.Sprintf(`{"transferor":%q,"target":"2999"}`, c.caller), "TRANSFER_COMPLETED")
	refer := waitReceived(t, "callee", c.uas, "REFER", 0, anyMessage)
	if rt := refer.header("Refer-To"); !strings.Contains(rt, "2999@") {
		t.Errorf("REFER to the callee has Refer-To %q; want the target 2999", rt)
	}
	if rb := refer.header("Referred-By"); !strings.Contains(rb, c.caller+"@") {
		t.Errorf("REFER to the callee has Referred-By %q; want the transferor %s", rb, c.caller)
	}
}

func forward(t *testing.T, s *server, c *call, by string) {
	// In a call, forward is a transfer by the callee: the caller is
	// referred to the target.
	operate(t, s, c, by, "forward", `{"target":"2998"}`, "TRANSFER_COMPLETED")
	refer := waitReceived(t, "caller", c.uac, "REFER", 0, anyMessage)
	if rt := refer.header("Refer-To"); !strings.Contains(rt, "2998@") {
		t.Errorf("REFER to the caller has Refer-To %q; want the target 2998", rt)
	}
}

// ending is an operation that ends the call: both parties get a BYE; a
// closed session is released (404), a hung-up one stays readable.
func ending(op, state string) func(t *testing.T, s *server, c *call, by string) {
	return func(t *testing.T, s *server, c *call, by string) {
		operate(t, s, c, by, op, "", state)
		waitReceived(t, "caller", c.uac, "BYE", 0, anyMessage)
		waitReceived(t, "callee", c.uas, "BYE", 0, anyMessage)
		r := s.do(t, adminToken, "GET", "/api/v1/sessions/"+c.id, "")
		if state == "CLOSED" {
			r.expectError(t, http.StatusNotFound, "not_found")
			return
		}
		if v := s.session(t, c.id); v.State != state {
			t.Errorf("after %s the session is %s; want %s", op, v.State, state)
		}
	}
}

func dtmfAndListen(t *testing.T, s *server, c *call, by string) {
	operate(t, s, c, by, "dtmf", fmt.Sprintf(`{"key":"5","party":%q}`, c.callee), "IN_CALL")
	info := waitReceived(t, "callee", c.uas, "INFO", 0, anyMessage)
	if !strings.Contains(info.body(), "Signal=5") {
		t.Errorf("INFO to the callee carries %q; want Signal=5", info.body())
	}
	// A client with the listen privilege gets past the check: an offer
	// that is missing is refused as an argument, a listener that does not
	// exist is not found, and nothing happens on the wire. (Real listening
	// is tested with Chromium in test/browser.)
	listener := without(auth.SessionsHold)
	s.do(t, s.tokens[listener], "POST", "/api/v1/sessions/"+c.id+"/listen", "").expectError(t, http.StatusBadRequest, "invalid_argument")
	// An RTCSessionDescriptionInit of another type than offer is refused
	// naming the field (type "offer" is taken: test/browser listens with it).
	if e := s.do(t, s.tokens[listener], "POST", "/api/v1/sessions/"+c.id+"/listen", `{"type":"answer","sdp":"v=0"}`).
		expectError(t, http.StatusBadRequest, "invalid_argument"); e.Field != "type" || !strings.Contains(e.Message, "offer") {
		t.Errorf("listen with type answer: field %q, message %q; want the field type and the allowed offer", e.Field, e.Message)
	}
	s.do(t, s.tokens[listener], "DELETE", "/api/v1/sessions/"+c.id+"/listen/l1", "").expectError(t, http.StatusNotFound, "not_found")
}

func anyMessage(sipMessage) bool { return true }

// expectRefusalsAudited checks that every request refuseEverything sent is
// in the audit trail with its client, session and status, under the
// operation's name (for DELETE .../listen/{listenId}, a name of its own
// that says listen: neither the listen id nor the name of starting to
// listen).
func expectRefusalsAudited(t *testing.T, s *server, id string) {
	t.Helper()
	r := s.do(t, adminToken, "GET", "/api/v1/audit?limit=1000&session="+id, "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var audit struct{ Requests []auditRecord }
	r.decode(t, &audit)
	var missing []string
	for _, op := range operations {
		name := op.path[strings.LastIndex(op.path, "}/")+2:]
		type who struct {
			client string
			status int
		}
		want := []who{{"outsider", http.StatusNotFound}}
		for _, client := range lacking(op.priv) {
			want = append(want, who{client, http.StatusForbidden})
		}
		for _, w := range want {
			if !slices.ContainsFunc(audit.Requests, func(a auditRecord) bool {
				named := a.Operation == name
				if op.method == "DELETE" {
					named = a.Operation != "l1" && a.Operation != "listen" && strings.Contains(strings.ToLower(a.Operation), "listen")
				}
				return named && a.Client == w.client && a.Status == w.status && a.Result == "error"
			}) {
				missing = append(missing, fmt.Sprintf("%s by %s (%d)", op, w.client, w.status))
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("the audit trail of session %s lacks these refused requests:\n  %s\nit has:\n%s", id, strings.Join(missing, "\n  "), describeAudit(audit.Requests))
	}
}
