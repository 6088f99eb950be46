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

// Transfers and forwards go only where policy allows, through the real
// HTTP server and a live SIPp call:
//   - a SIP URI on a host that is neither the trunk's nor a route target's
//     is 400 invalid_argument naming the allowed hosts, even for admin; sips:
//     and tel: are 400 naming the allowed schemes;
//   - a number, or a URI's user part, outside the client's targets
//     patterns is 403 forbidden naming the target;
//   - every refusal is audited, and nothing reaches either party;
//   - an allowed number goes through the routing table: the REFER's
//     Refer-To is the route target.
func TestTransferAndForwardGoOnlyWherePolicyAllows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)
	const routeHost = "127.0.0.3" // a route target's host: allowed by default
	s := startServer(t, []clientSpec{{
		name:    "agent-2xxx",
		privs:   []auth.Privilege{auth.SessionsView, auth.SessionsTransfer, auth.SessionsForward},
		targets: []string{`2\d{3}`},
	}}, func(cfg *config.Config) {
		cfg.Routes = []config.Route{routeTo("2001", uas), {Match: `29\d\d`, Target: "sip:{number}@" + routeHost + ":5999"}}
	})
	c := s.dial(t, uas, dir, "1001", "2001")
	t.Cleanup(func() { hangupIfLive(t, s, c) })

	path := func(op string) string { return "/api/v1/sessions/" + c.id + "/" + op }
	transferTo := func(target string) string { return fmt.Sprintf(`{"transferor":%q,"target":%q}`, c.caller, target) }
	forwardTo := func(target string) string { return fmt.Sprintf(`{"target":%q}`, target) }
	type refusal struct {
		client, op, body string
		status           int
		code             string
		want             []string
	}
	var refusals []refusal
	for _, op := range []struct {
		name string
		body func(string) string
	}{{"transfer", transferTo}, {"forward", forwardTo}} {
		refusals = append(refusals,
			refusal{"admin", op.name, op.body("sip:2999@127.0.0.9"), http.StatusBadRequest, "invalid_argument",
				[]string{"127.0.0.9", "allowed hosts: 127.0.0.1, " + routeHost}},
			refusal{"admin", op.name, op.body("sip:2999@evil.example.com:5060"), http.StatusBadRequest, "invalid_argument",
				[]string{"evil.example.com", "allowed hosts: 127.0.0.1, " + routeHost}},
			refusal{"admin", op.name, op.body("sips:2999@127.0.0.1"), http.StatusBadRequest, "invalid_argument",
				[]string{"sips:", "allowed schemes: sip"}},
			refusal{"admin", op.name, op.body("tel:+4930123"), http.StatusBadRequest, "invalid_argument",
				[]string{"tel:", "allowed schemes: sip"}},
			refusal{"admin", op.name, op.body("sip:2999@127.0.0.1;maddr=127.0.0.9"), http.StatusBadRequest, "invalid_argument",
				[]string{"maddr"}},
			refusal{"agent-2xxx", op.name, op.body("sip:2999@127.0.0.9"), http.StatusBadRequest, "invalid_argument",
				[]string{"allowed hosts: 127.0.0.1, " + routeHost}},
			refusal{"agent-2xxx", op.name, op.body("3999"), http.StatusForbidden, "forbidden",
				[]string{`"3999"`, "agent-2xxx"}},
			refusal{"agent-2xxx", op.name, op.body("29990"), http.StatusForbidden, "forbidden",
				[]string{`"29990"`}},
			refusal{"agent-2xxx", op.name, op.body("sip:3999@127.0.0.1"), http.StatusForbidden, "forbidden",
				[]string{`"sip:3999@127.0.0.1"`}},
		)
	}
	for _, rf := range refusals {
		r := s.do(t, s.tokens[rf.client], "POST", path(rf.op), rf.body)
		e := r.expectError(t, rf.status, rf.code)
		if e.Field != "target" {
			t.Errorf("%v as %s: field %q; want target", r, rf.client, e.Field)
		}
		for _, w := range rf.want {
			if !strings.Contains(e.Message, w) {
				t.Errorf("%v as %s: message %q; want it to name %s", r, rf.client, e.Message, w)
			}
		}
	}
	if got := methods(received(c.uas)); !slices.Equal(got, []string{"INVITE", "ACK"}) {
		t.Errorf("after the refused transfers the callee received %v; want only INVITE, ACK", got)
	}
	if got := methods(received(c.uac)); len(got) != 0 {
		t.Errorf("after the refused forwards the caller received %v; want nothing", got)
	}
	if v := s.session(t, c.id); v.State != "IN_CALL" {
		t.Errorf("after the refusals the session is %s; want IN_CALL", v.State)
	}

	// Each refusal is in the audit trail with its client, target and status.
	r := s.do(t, adminToken, "GET", "/api/v1/audit?limit=1000&session="+c.id, "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var audit struct{ Requests []auditRecord }
	r.decode(t, &audit)
	for _, rf := range refusals {
		target := strings.TrimSuffix(rf.body[strings.LastIndex(rf.body, `"target":"`)+len(`"target":"`):], `"}`)
		if !slices.ContainsFunc(audit.Requests, func(a auditRecord) bool {
			return a.Operation == rf.op && a.Client == rf.client && a.Status == rf.status && a.Result == "error" && a.Args["target"] == target
		}) {
			t.Errorf("the audit trail lacks %s to %s by %s (%d); it has:\n%s", rf.op, target, rf.client, rf.status, describeAudit(audit.Requests))
		}
	}

	// A number in the client's targets goes through the routing table.
	operate(t, s, c, "agent-2xxx", "transfer", transferTo("2999"), "TRANSFER_COMPLETED")
	refer := waitReceived(t, "callee", c.uas, "REFER", 0, anyMessage)
	if rt, want := refer.header("Refer-To"), "<sip:2999@"+routeHost+":5999>"; rt != want {
		t.Errorf("REFER to the callee has Refer-To %q; want the route target %s", rt, want)
	}
	c.uac.ExpectPass(t, 10*time.Second)
	c.uas.ExpectPass(t, 10*time.Second)
}

// A SIP URI on an allowed host is taken: here a route target's host, which
// the default calls.transfer_hosts includes besides the trunk's.
func TestTransferToAnAllowedSIPURIIsReferredAsGiven(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)
	s := startServer(t, nil, func(cfg *config.Config) {
		cfg.Routes = []config.Route{routeTo("2001", uas), {Match: `9\d+`, Target: "sip:{number}@127.0.0.4:5999"}}
	})
	c := s.dial(t, uas, dir, "1001", "2001")
	t.Cleanup(func() { hangupIfLive(t, s, c) })
	const target = "sip:4000@127.0.0.4:5062;transport=udp"
	operate(t, s, c, "admin", "transfer", fmt.Sprintf(`{"transferor":%q,"target":%q}`, c.caller, target), "TRANSFER_COMPLETED")
	refer := waitReceived(t, "callee", c.uas, "REFER", 0, anyMessage)
	if rt := refer.header("Refer-To"); rt != "<"+target+">" {
		t.Errorf("REFER to the callee has Refer-To %q; want <%s>", rt, target)
	}
	c.uac.ExpectPass(t, 10*time.Second)
	c.uas.ExpectPass(t, 10*time.Second)
}
