package api

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// auditRecord and callRecord are the rows of /api/v1/audit and
// /api/v1/calls (keys matched without regard to case).
type auditRecord struct {
	ID        int64
	Time      time.Time
	Client    string
	Operation string
	Args      map[string]string
	SessionID string
	Result    string
	Status    int
	Error     string
}

type callRecord struct {
	SessionID               string
	Caller, Callee, Dialled string
	Start, Answer, End      time.Time
	State, EndReason        string
	Operations              []string
}

// The real binary, started the way scripts start it (flags and CALLCTL_*
// variables, clients in a config file), carries a SIPp call on which
// clients make operations, some refused; the call is hung up through the
// API. The moment the hangup is answered, callctl is killed with SIGKILL.
// Started again on the same database, it shows every request answered
// before the kill in /api/v1/audit (client, operation, arguments, session,
// result, status) and the call in /api/v1/calls (parties, times, end
// reason, operations); and no token was ever in its log.
func TestAuditAndCallRecordsSurviveKill9(t *testing.T) {
	t.Parallel()
	bin := callctltest.BuildCallctl(t)
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)

	tokens := map[string]string{"admin": adminToken}
	var yaml strings.Builder
	yaml.WriteString("clients:\n")
	for _, c := range []clientSpec{
		{name: "supervisor", privs: []auth.Privilege{auth.SessionsView, auth.SessionsHold, auth.SessionsDTMF, auth.SessionsHangup}},
		{name: "viewer", privs: []auth.Privilege{auth.SessionsView}},
	} {
		token, hash, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[c.name] = token
		fmt.Fprintf(&yaml, "  - name: %s\n    token_hash: %q\n    privileges: [", c.name, hash)
		for i, p := range c.privs {
			if i > 0 {
				yaml.WriteString(", ")
			}
			yaml.WriteString(string(p))
		}
		yaml.WriteString("]\n")
	}
	cfgPath := filepath.Join(t.TempDir(), "callctl.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "callctl.db")
	env := []string{
		"CALLCTL_AUDIT_PATH=" + db,
		"CALLCTL_ADMIN_TOKEN=" + adminToken,
		"CALLCTL_SIP_ALLOW=127.0.0.0/8",
		"CALLCTL_MEDIA_PORT_REST=200ms",
		"CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=1s",
	}
	run := func() (*callctltest.Daemon, *server) {
		s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", peers.FreeUDPPort(t)), tokens: tokens, client: &http.Client{Timeout: 30 * time.Second}}
		s.cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
		lo, hi := peers.FreePortRange(t, 32)
		d := callctltest.StartDaemon(t, bin, s.url, []string{
			"--config", cfgPath,
			"--sip", s.cfg.SIP.Listen,
			"--pbx", uas.LocalAddr(),
			"--api", strings.TrimPrefix(s.url, "http://"),
			"--rtp-ports", fmt.Sprintf("%d-%d", lo, hi),
		}, env)
		t.Cleanup(s.client.CloseIdleConnections)
		return d, s
	}

	first, s := run()
	c := s.dial(t, uas, dir, "1001", "2001")
	sessionOp := func(op string) string { return "/api/v1/sessions/" + c.id + "/" + op }
	type sent struct {
		client, op, path, body string
		status                 int
		args                   map[string]string
		session                string
	}
	requests := []sent{
		{"supervisor", "dtmf", sessionOp("dtmf"), `{"keys":"12","party":"2001"}`, 200, map[string]string{"keys": "12", "party": "2001"}, c.id},
		{"supervisor", "hold", sessionOp("hold"), "", 200, nil, c.id},
		{"viewer", "hold", sessionOp("hold"), "", 403, nil, c.id},
		{"admin", "unhold", sessionOp("unhold"), "", 200, nil, c.id},
		{"supervisor", "dtmf", sessionOp("dtmf"), `{"key":"X","party":"2001"}`, 400, map[string]string{"key": "X", "party": "2001"}, c.id},
		{"supervisor", "hold", "/api/v1/sessions/no-such-session/hold", "", 404, nil, "no-such-session"},
		{"supervisor", "hangup", sessionOp("hangup"), "", 200, nil, c.id},
	}
	for _, rq := range requests {
		if r := s.do(t, tokens[rq.client], "POST", rq.path, rq.body); r.status != rq.status {
			t.Fatalf("%v as %s; want %d", r, rq.client, rq.status)
		}
	}
	first.Kill(t) // as soon as the hangup is answered
	c.uac.ExpectPass(t, 10*time.Second)
	c.uas.ExpectPass(t, 10*time.Second)

	_, s = run()
	r := s.do(t, adminToken, "GET", "/api/v1/audit?limit=1000", "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var audit struct{ Requests []auditRecord }
	r.decode(t, &audit)
	slices.Reverse(audit.Requests) // oldest first, as sent
	var last int64
	for _, rq := range requests {
		i := slices.IndexFunc(audit.Requests, func(a auditRecord) bool {
			return a.Client == rq.client && a.Operation == rq.op && a.SessionID == rq.session && a.Status == rq.status && a.ID > last
		})
		if i < 0 {
			t.Errorf("after kill -9 and restart, the audit trail has no %s by %s on %s answered %d (after record #%d); it has:\n%s",
				rq.op, rq.client, rq.session, rq.status, last, describeAudit(audit.Requests))
			continue
		}
		a := audit.Requests[i]
		last = a.ID
		wantResult := "ok"
		if rq.status != 200 {
			wantResult = "error"
		}
		if a.Result != wantResult || (wantResult == "error") != (a.Error != "") || a.Time.IsZero() {
			t.Errorf("audit record %+v: want result %s, an error message only for a refusal, and a time", a, wantResult)
		}
		if len(rq.args) > 0 && !mapsEqual(a.Args, rq.args) {
			t.Errorf("audit record of %s by %s has args %v; want %v", rq.op, rq.client, a.Args, rq.args)
		}
	}

	r = s.do(t, adminToken, "GET", "/api/v1/calls?session="+c.id, "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var calls struct{ Calls []callRecord }
	r.decode(t, &calls)
	if len(calls.Calls) != 1 {
		t.Fatalf("after kill -9 and restart, /api/v1/calls has %d records of session %s; want 1: %s", len(calls.Calls), c.id, r.body)
	}
	rec := calls.Calls[0]
	if rec.Caller != "1001" || rec.Callee != "2001" || rec.Dialled != "2001" {
		t.Errorf("call record %+v; want caller 1001, callee and dialled 2001", rec)
	}
	if rec.Start.IsZero() || rec.Answer.Before(rec.Start) || rec.End.Before(rec.Answer) || time.Since(rec.End) > time.Minute {
		t.Errorf("call record times start %v, answer %v, end %v; want start ≤ answer ≤ end, within the last minute", rec.Start, rec.Answer, rec.End)
	}
	if rec.State != "HUNG_UP" || rec.EndReason == "" {
		t.Errorf("call record ended %q (%q); want HUNG_UP with a reason", rec.State, rec.EndReason)
	}
	for _, op := range []string{"sendDtmf", "hold", "unhold", "hangup"} {
		if !slices.ContainsFunc(rec.Operations, func(o string) bool { return strings.HasPrefix(o, op+" ") }) {
			t.Errorf("call record operations %q lack %s", rec.Operations, op)
		}
	}

	if log := first.Output(); !strings.Contains(log, "callctl serving") {
		t.Errorf("the first callctl's log does not show it serving:\n%s", log)
	} else {
		for name, token := range tokens {
			if strings.Contains(log, token) {
				t.Errorf("callctl logged the token of %s", name)
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func describeAudit(recs []auditRecord) string {
	var b strings.Builder
	for _, a := range recs {
		fmt.Fprintf(&b, "  #%d %s %s %s on %s → %s %d %s\n", a.ID, a.Time.Format(time.TimeOnly), a.Client, a.Operation, a.SessionID, a.Result, a.Status, a.Error)
	}
	return b.String()
}
