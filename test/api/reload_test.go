package api

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// reloadClient is one API client of the configuration file a reload test
// rewrites.
type reloadClient struct {
	name, token, hash string
	privs             []auth.Privilege
}

func newReloadClient(t *testing.T, name string, privs ...auth.Privilege) reloadClient {
	t.Helper()
	token, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return reloadClient{name: name, token: token, hash: hash, privs: privs}
}

// writeConfig writes clients, then extra (more YAML, verbatim), to path.
func writeConfig(t *testing.T, path, extra string, clients ...reloadClient) {
	t.Helper()
	var b strings.Builder
	b.WriteString("clients:\n")
	for _, c := range clients {
		fmt.Fprintf(&b, "  - name: %s\n    token_hash: %q\n    privileges: [", c.name, c.hash)
		for i, p := range c.privs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(p))
		}
		b.WriteString("]\n")
	}
	b.WriteString(extra)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// metric returns the value of the sample line that starts with name (with
// its labels, e.g. `callctl_rtp_packets{direction="in"}`), or -1.
func metric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	r := s.do(t, adminToken, "GET", "/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, v)
			}
			return f
		}
	}
	return -1
}

// The real binary, started with a configuration file, flags and CALLCTL_*
// variables, carries a SIPp call with RTP both ways. Then, while the call
// goes on:
//   - a client added to the file and SIGHUP: its token works at once, and
//     the log says "clients: +1 -0 ~0" (never a token or hash);
//   - a file that does not parse, and SIGHUP: nothing changes (the old
//     clients work, the one added with the break does not) and the log
//     names the file and line;
//   - a file that changes sip.user_agent (a restart-only key), and SIGHUP:
//     refused, the log names the key, nothing changes;
//   - `callctl config reload` after adding one client and removing one
//     (whose event stream is closed), adding a route and setting
//     media.rtp_ports, which the --rtp-ports flag overrides: exit 0, the
//     change printed, the new token works, the removed one is 401;
//   - `callctl config reload` with an invalid client and with a
//     restart-only change: exit 1, the field or key named, nothing
//     changed;
//   - a new call then goes by the route the accepted reload added, and
//     the event stream of a client whose entry never changed, open all
//     along, carries it.
//
// Through it all the call stays IN_CALL with RTP still relayed, the
// reloads are counted in callctl_config_reloads_total and the API's
// reloads are in the audit trail.
func TestReloadAddsClientsWhileACallRunsAndRefusesBadFilesWhole(t *testing.T) {
	t.Parallel()
	bin := callctltest.BuildCallctl(t)
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)

	viewer := newReloadClient(t, "viewer", auth.SessionsView)
	newbie := newReloadClient(t, "newbie", auth.SessionsView)
	ghost := newReloadClient(t, "ghost", auth.SessionsView)
	third := newReloadClient(t, "third", auth.SessionsView, auth.SessionsHangup)
	tokens := map[string]string{"admin": adminToken, viewer.name: viewer.token, newbie.name: newbie.token, ghost.name: ghost.token, third.name: third.token}

	cfgPath := filepath.Join(t.TempDir(), "callctl.yaml")
	writeConfig(t, cfgPath, "", viewer)
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", peers.FreeUDPPort(t)), tokens: tokens, client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(s.client.CloseIdleConnections)
	s.cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, 32)
	d := callctltest.StartDaemon(t, bin, s.url, []string{
		"--config", cfgPath,
		"--sip", s.cfg.SIP.Listen,
		"--pbx", uas.LocalAddr(),
		"--api", strings.TrimPrefix(s.url, "http://"),
		"--rtp-ports", fmt.Sprintf("%d-%d", lo, hi),
	}, []string{
		"CALLCTL_AUDIT_PATH=" + filepath.Join(t.TempDir(), "callctl.db"),
		"CALLCTL_ADMIN_TOKEN=" + adminToken,
		"CALLCTL_SIP_ALLOW=127.0.0.0/8",
		"CALLCTL_MEDIA_PORT_REST=200ms",
		"CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=1s",
	})
	pid := d.PID()

	c := s.dial(t, uas, dir, "1001", "2001")
	t.Cleanup(func() { hangupIfLive(t, s, c) })
	status := func(name string) int {
		t.Helper()
		return s.do(t, tokens[name], "GET", "/api/v1/sessions", "").status
	}
	if got := status(newbie.name); got != http.StatusUnauthorized {
		t.Fatalf("before any reload newbie's token → %d; want 401", got)
	}
	viewerStream := s.openStream(t, viewer.token, "")
	viewerStream.waitFor(t, 5*time.Second, "HELLO", func(m []streamMsg) bool { return len(m) > 0 && m[0].Type == "HELLO" })

	// callStillUp checks the call is IN_CALL and its RTP still flows.
	callStillUp := func(after string) {
		t.Helper()
		if v := s.session(t, c.id); v.State != "IN_CALL" {
			t.Fatalf("after %s the call is %s; want IN_CALL still", after, v.State)
		}
		const name = `callctl_rtp_packets{direction="in"}`
		before := metric(t, s, name)
		if !eventually(5*time.Second, func() bool { return metric(t, s, name) > before }) {
			t.Fatalf("after %s no RTP relayed in 5 s (%s stays %v)", after, name, before)
		}
	}
	// logSays waits for the n-th log line holding every one of parts.
	logSays := func(n int, parts ...string) string {
		t.Helper()
		var found string
		if !eventually(10*time.Second, func() bool {
			seen := 0
			for _, line := range strings.Split(d.Output(), "\n") {
				all := true
				for _, p := range parts {
					all = all && strings.Contains(line, p)
				}
				if all {
					if seen++; seen == n {
						found = line
						return true
					}
				}
			}
			return false
		}) {
			t.Fatalf("no log line #%d with %q within 10 s", n, parts)
		}
		return found
	}
	hup := func() {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatalf("kill -HUP %d: %v", pid, err)
		}
	}

	// 1. A client added to the file, then SIGHUP.
	writeConfig(t, cfgPath, "", viewer, newbie)
	hup()
	logSays(1, "configuration reloaded", "clients: +1 -0 ~0")
	if got := status(newbie.name); got != http.StatusOK {
		t.Fatalf("after SIGHUP newbie's token → %d; want 200", got)
	}
	if list := s.sessions(t, newbie.name, ""); len(list) != 1 || list[0].ID != c.id || list[0].State != "IN_CALL" {
		t.Fatalf("newbie sees %+v; want the one call, IN_CALL", list)
	}
	callStillUp("adding a client")

	// 2. A file that does not parse (and would add ghost).
	writeConfig(t, cfgPath, "sip: [not, a, mapping\n", viewer, newbie, ghost)
	hup()
	line := logSays(1, "configuration not reloaded")
	if !strings.Contains(line, cfgPath) {
		t.Errorf("the refusal of a broken file does not name it: %s", line)
	}
	for name, want := range map[string]int{viewer.name: 200, newbie.name: 200, ghost.name: 401} {
		if got := status(name); got != want {
			t.Errorf("after a SIGHUP with a broken file %s's token → %d; want %d", name, got, want)
		}
	}

	// 3. A restart-only key changed (and ghost added): refused whole.
	writeConfig(t, cfgPath, "sip:\n  user_agent: something-else\n", viewer, newbie, ghost)
	hup()
	line = logSays(2, "configuration not reloaded")
	if !strings.Contains(line, "sip.user_agent") || !strings.Contains(line, "restart") {
		t.Errorf("the refusal of a restart-only change does not name sip.user_agent and say it needs a restart: %s", line)
	}
	if got := status(ghost.name); got != http.StatusUnauthorized {
		t.Errorf("after a refused reload ghost's token → %d; want 401", got)
	}
	callStillUp("two refused reloads")

	// 4. callctl config reload: third in, viewer out; media.rtp_ports in
	// the file is overridden by --rtp-ports, as at start, so it is no
	// change.
	cli := func(wantCode int, want ...string) string {
		t.Helper()
		cmd := exec.Command(bin, "config", "reload", "--api-url", s.url)
		cmd.Env = append(os.Environ(), "CALLCTL_TOKEN="+adminToken)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		out := stdout.String() + stderr.String()
		if code != wantCode {
			t.Fatalf("callctl config reload exited %d; want %d\n%s", code, wantCode, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("callctl config reload printed no %q:\n%s", w, out)
			}
		}
		for _, tok := range tokens {
			if strings.Contains(out, tok) {
				t.Errorf("callctl config reload printed a token:\n%s", out)
			}
		}
		return out
	}
	uas2 := callee(t, dir)
	routes := fmt.Sprintf("routes:\n  - match: \"3001\"\n    target: \"sip:{number}@%s\"\n", uas2.LocalAddr())
	newbieStream := s.openStream(t, newbie.token, "")
	newbieStream.waitFor(t, 5*time.Second, "HELLO", func(m []streamMsg) bool { return len(m) > 0 && m[0].Type == "HELLO" })
	writeConfig(t, cfgPath, "media:\n  rtp_ports: 40000-40099\n"+routes, newbie, third)
	cli(0, "config reload: ok", "clients: +1 -1 ~0; routes")
	for name, want := range map[string]int{viewer.name: 401, newbie.name: 200, third.name: 200, ghost.name: 401} {
		if got := status(name); got != want {
			t.Errorf("after callctl config reload %s's token → %d; want %d", name, got, want)
		}
	}
	select {
	case <-viewerStream.done:
		viewerStream.mu.Lock()
		why := viewerStream.closed
		viewerStream.mu.Unlock()
		if why == nil || !strings.Contains(why.Error(), "configuration reload") {
			t.Errorf("the removed client's event stream ended with %v; want a close saying a configuration reload changed its access", why)
		}
	case <-time.After(5 * time.Second):
		t.Error("the removed client's event stream is still open 5 s after the reload")
	}

	// 5. callctl config reload refusing: an invalid client, then a
	// restart-only key. Exit 1, nothing changed.
	bad := newbie
	bad.name, bad.hash = "broken", "sha256:nothex"
	writeConfig(t, cfgPath, routes, newbie, third, bad, ghost)
	cli(1, "clients[2].token_hash", "HTTP 400 invalid_config")
	writeConfig(t, cfgPath, routes+"calls:\n  ring_timeout: 5s\n", newbie, third, ghost)
	cli(1, "calls.ring_timeout", "restart", "HTTP 409 restart_required")
	for name, want := range map[string]int{newbie.name: 200, third.name: 200, ghost.name: 401} {
		if got := status(name); got != want {
			t.Errorf("after refused reloads %s's token → %d; want %d", name, got, want)
		}
	}
	if strings.Contains(d.Output(), "sha256:nothex") {
		t.Error("callctl logged a configured token_hash")
	}
	callStillUp("callctl config reload")

	// A new call goes by the route the reload added, refused reloads
	// since notwithstanding (the trunk's SIPp takes one call only, so it
	// could not be answered there).
	c2 := s.dial(t, uas2, dir, "1002", "3001")
	t.Cleanup(func() { hangupIfLive(t, s, c2) })
	// newbie's entry never changed: its stream, open across every reload,
	// goes on and carries the new call.
	newbieStream.waitFor(t, 5*time.Second, "the new call IN_CALL on the unchanged client's stream", func(m []streamMsg) bool { return hasState(m, c2.id, "IN_CALL") })

	for result, want := range map[string]float64{"ok": 2, "refused": 4} {
		if got := metric(t, s, `callctl_config_reloads_total{result="`+result+`"}`); got != want {
			t.Errorf("callctl_config_reloads_total{result=%q} = %v; want %v", result, got, want)
		}
	}
	r := s.do(t, adminToken, "GET", "/api/v1/audit?operation=configReload", "")
	var audit struct{ Requests []auditRecord }
	r.decode(t, &audit)
	if len(audit.Requests) != 3 {
		t.Errorf("the audit trail has %d configReload records; want 3 (one ok, two refused): %s", len(audit.Requests), describeAudit(audit.Requests))
	}
	for _, a := range audit.Requests {
		if a.Client != "admin" || (a.Status != 200 && a.Result != "error") {
			t.Errorf("audit record %+v: want client admin, refusals as errors", a)
		}
	}

	// The call was never touched: third (added by reload) hangs it up.
	if r := s.do(t, third.token, "POST", "/api/v1/sessions/"+c.id+"/hangup", ""); r.status != http.StatusOK {
		t.Fatalf("hangup by the reloaded client: %v; want 200", r)
	}
	c.uac.ExpectPass(t, 10*time.Second)
	c.uas.ExpectPass(t, 10*time.Second)
	if r := s.do(t, third.token, "POST", "/api/v1/sessions/"+c2.id+"/hangup", ""); r.status != http.StatusOK {
		t.Fatalf("hangup of the routed call: %v; want 200", r)
	}
	c2.uac.ExpectPass(t, 10*time.Second)
	c2.uas.ExpectPass(t, 10*time.Second)
	log := d.Output()
	for name, tok := range tokens {
		if strings.Contains(log, tok) {
			t.Errorf("callctl logged the token of %s", name)
		}
	}
	for _, rc := range []reloadClient{viewer, newbie, ghost, third} {
		if strings.Contains(log, rc.hash) {
			t.Errorf("callctl logged the token hash of %s", rc.name)
		}
	}
}
