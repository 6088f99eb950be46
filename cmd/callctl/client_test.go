package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/api"
	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

const testToken = "cli-test-admin-token"

// testCallctl is a callctl running in-process for a test, with its API on
// a free port and an admin token.
type testCallctl struct {
	app *app.App
	// environ points the client commands at it with the admin token.
	environ []string
}

// startCallctl starts callctl on free ports of 127.0.0.1 with trunk as its
// PBX; the test's cleanup stops it and waits for Run to return.
func startCallctl(t *testing.T, trunk string) *testCallctl {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	cfg.SIP.Allow = []string{"127.0.0.0/8"}
	cfg.API.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, 16)
	cfg.Media.IP = "127.0.0.1"
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Shutdown.DrainTimeout = 2 * time.Second
	cfg.Trunk.Address = trunk
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = testToken

	var out bytes.Buffer // the one-time token notice, not expected with an admin token
	a, err := app.NewWithOptions(cfg, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)), app.Options{Out: &out})
	if err != nil {
		t.Fatalf("app.NewWithOptions: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("callctl Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("callctl Run still running 20 s after cancel")
		}
	})
	return &testCallctl{app: a, environ: []string{apiURLEnv + "=" + a.APIURL(), tokenEnv + "=" + testToken}}
}

// cli runs a callctl command line against c.
func (c *testCallctl) cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, c.environ, &out, &errOut)
	t.Logf("callctl %s → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// waitSession waits for a session in state and returns it.
func waitSession(t *testing.T, reg *session.Registry, state session.State, timeout time.Duration) session.Snapshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range reg.List() {
			if s.State == state {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session in %s within %v (sessions: %+v)", state, timeout, reg.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stateOf(t *testing.T, reg *session.Registry, id string) session.State {
	t.Helper()
	s, ok := reg.Get(id)
	if !ok {
		t.Fatalf("session %s is gone", id)
	}
	return s.State
}

// The acceptance story of the CLI: a SIPp caller calls a SIPp callee
// through callctl; `callctl sessions` shows the call IN_CALL with both
// parties, `hold` and `unhold` re-INVITE both SIPps (their scenarios require
// a=sendonly then a=sendrecv) and the session goes ON_HOLD and back, and a
// transfer by a number that is neither party fails with the server's
// message, exit 1, and nothing on the wire (the scenarios would fail on a
// REFER).
func TestCLIListsHoldsAndUnholdsALiveCallAndReportsTheServersRefusal(t *testing.T) {
	t.Parallel()
	callerDir, calleeDir := t.TempDir(), t.TempDir()
	peers.ToneFile(t, callerDir, 2, 440)
	peers.ToneFile(t, calleeDir, 2, 660)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_held_by_callctl.xml"), Dir: calleeDir})
	cc := startCallctl(t, uas.LocalAddr())
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_held_by_callctl.xml"),
		RemoteAddr: cc.app.SIPAddr(),
		Service:    "2000",
		Keys:       map[string]string{"duration": "500"},
		Dir:        callerDir,
		Timeout:    30 * time.Second,
	})
	reg := cc.app.Sessions()
	id := waitSession(t, reg, session.InCall, 10*time.Second).ID

	code, out, _ := cc.cli(t, "sessions")
	if code != exitOK {
		t.Fatalf("sessions: exit %d, want 0", code)
	}
	header, row, _ := strings.Cut(out, "\n")
	for _, col := range []string{"ID", "STATE", "CALLER", "CALLEE", "DIALLED", "TALK TIME", "STATE TIME"} {
		if !strings.Contains(header, col) {
			t.Errorf("sessions header %q lacks the column %s", header, col)
		}
	}
	for _, want := range []string{id, "IN_CALL", "sipp", "2000"} {
		if !strings.Contains(row, want) {
			t.Errorf("sessions row %q lacks %q", row, want)
		}
	}

	code, out, _ = cc.cli(t, "sessions", "--json", "--state", "IN_CALL", "--number", "2000")
	var list struct {
		Sessions []api.SessionView `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != exitOK || err != nil {
		t.Errorf("sessions --json: exit %d, %v; want 0 and the API's JSON", code, err)
	} else if len(list.Sessions) != 1 || list.Sessions[0].ID != id || list.Sessions[0].Callee.Number != "2000" {
		t.Errorf("sessions --json listed %+v; want the one call %s to 2000", list.Sessions, id)
	}
	if code, out, _ = cc.cli(t, "sessions", "--state", "RINGING"); code != exitOK || strings.TrimSpace(out) != "no sessions" {
		t.Errorf("sessions --state RINGING: exit %d, %q; want 0 and \"no sessions\"", code, out)
	}

	code, _, errOut := cc.cli(t, "transfer", id, "999", "300")
	if code != exitRuntime || !strings.Contains(errOut, "transferor") || !strings.Contains(errOut, "400") {
		t.Errorf("transfer by a non-party: exit %d, stderr %q; want 1 and the server's 400 message naming the transferor", code, errOut)
	}
	if st := stateOf(t, reg, id); st != session.InCall {
		t.Errorf("after the refused transfer the session is %s, want IN_CALL", st)
	}

	code, out, _ = cc.cli(t, "hold", id)
	if code != exitOK || !strings.Contains(out, "ON_HOLD") {
		t.Errorf("hold: exit %d, stdout %q; want 0 and a line saying ON_HOLD", code, out)
	}
	if st := stateOf(t, reg, id); st != session.OnHold {
		t.Errorf("after hold the session is %s, want ON_HOLD", st)
	}

	code, out, _ = cc.cli(t, "unhold", id, "--json") // a flag after the argument
	var res struct {
		OK      bool            `json:"ok"`
		Session api.SessionView `json:"session"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil || !res.OK || res.Session.State != session.InCall {
		t.Errorf("unhold --json: exit %d, %q (%v); want 0 and {ok:true, session IN_CALL}", code, out, err)
	}
	if st := stateOf(t, reg, id); st != session.InCall {
		t.Errorf("after unhold the session is %s, want IN_CALL", st)
	}

	if code, _, errOut = cc.cli(t, "hold", "no-such-session"); code != exitRuntime || !strings.Contains(errOut, `no session "no-such-session"`) {
		t.Errorf("hold of an unknown session: exit %d, stderr %q; want 1 and the server's 404 message", code, errOut)
	}

	const wrong = "cc_not-a-token-callctl-knows"
	var out2, errOut2 bytes.Buffer
	code = run([]string{"sessions", "--token", wrong}, cc.environ, &out2, &errOut2)
	if code != exitRuntime || !strings.Contains(errOut2.String(), "token not recognised") {
		t.Errorf("sessions with a wrong token: exit %d, stderr %q; want 1 and the server's 401 message", code, errOut2.String())
	}
	if all := out2.String() + errOut2.String(); strings.Contains(all, wrong) || strings.Contains(all, testToken) {
		t.Errorf("the output shows a token:\n%s", all)
	}

	uac.ExpectPass(t, 20*time.Second)
	uas.ExpectPass(t, 10*time.Second)
}

// syncBuffer is a bytes.Buffer that a command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitOutput waits until match finds a line of buf and returns that line.
func waitOutput(t *testing.T, buf *syncBuffer, what string, timeout time.Duration, match func(line string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for line := range strings.SplitSeq(buf.String(), "\n") {
			if match(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; output:\n%s", what, timeout, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchCommand runs a `sessions --watch` command line until the test stops
// it; stop cancels its context and returns its exit code.
func watchCommand(t *testing.T, args, environ []string) (stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- runContext(ctx, args, environ, stdout, stderr) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("%v still running 10 s after its context ended", args)
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

// `callctl sessions --watch` prints a line for each state change of a call
// that starts after it connected, with the sequence number, the session
// and previous → new state; cancelling its context ends it with exit 0.
func TestSessionsWatchPrintsOneLinePerStateChangeOfANewCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
	cc := startCallctl(t, uas.LocalAddr())
	stdout, stderr, stop := watchCommand(t, []string{"sessions", "--watch"}, cc.environ)
	waitOutput(t, stderr, "note that the stream is followed", 5*time.Second, func(l string) bool {
		return strings.Contains(l, "following the events")
	})

	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.app.SIPAddr(),
		Service:    "2000",
		Keys:       map[string]string{"duration": "500"},
		Dir:        dir,
		Timeout:    20 * time.Second,
	})
	newCall := waitOutput(t, stdout, "line for the new session", 10*time.Second, func(l string) bool {
		return strings.Contains(l, "new → SETUP")
	})
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  #\d+  [0-9a-f]{16}  new → SETUP  "SIPp" <sipp> → 2000`).MatchString(newCall) {
		t.Errorf("new session line %q; want time, #seq, session id, new → SETUP and the parties", newCall)
	}
	id := strings.Fields(newCall)[2]
	waitOutput(t, stdout, "IN_CALL line", 10*time.Second, func(l string) bool {
		// RINGING may be skipped: when the 200 overtakes the 180 (sipgo
		// handles each message on its own goroutine) the call goes from
		// SETUP straight to IN_CALL.
		return strings.Contains(l, id) && (strings.Contains(l, "RINGING → IN_CALL") || strings.Contains(l, "SETUP → IN_CALL"))
	})
	waitOutput(t, stdout, "hang-up line", 10*time.Second, func(l string) bool {
		return strings.Contains(l, id) && strings.Contains(l, "IN_CALL → CALLER_HUNG_UP")
	})
	uac.ExpectPass(t, 10*time.Second)
	uas.ExpectPass(t, 10*time.Second)
	if code := stop(); code != exitOK {
		t.Errorf("watch ended with exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
}

// A watch whose stream is cut reconnects with ?since= the last sequence
// number it printed and prints what the server sends then; the token goes
// in the Authorization header, never in the URL.
func TestSessionsWatchResumesAfterTheLastSeqWhenTheStreamIsCut(t *testing.T) {
	event := func(seq uint64, prev, state session.State) []byte {
		data, _ := json.Marshal(session.Event{Seq: seq, Type: session.EventStateChanged, SessionID: "0123456789abcdef",
			Previous: prev, State: state, Time: time.Now(), Reason: "test"})
		return data
	}
	queries := make(chan string, 4)
	var conns sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events" || r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, `{"error":{"code":"unauthenticated","message":"bad request in test"}}`, http.StatusUnauthorized)
			return
		}
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"callctl.v1"}})
		if err != nil {
			return
		}
		conns.Add(1)
		defer conns.Done()
		defer conn.CloseNow()
		queries <- r.URL.RawQuery
		ctx := conn.CloseRead(r.Context())
		if r.URL.Query().Get("since") == "" {
			_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"HELLO","seq":5,"oldestSeq":1}`))
			_ = conn.Write(ctx, websocket.MessageText, event(6, session.InCall, session.OnHold))
			conn.Close(websocket.StatusPolicyViolation, "client too slow: more than 1024 events waiting")
			return
		}
		_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"HELLO","seq":7,"oldestSeq":1}`))
		_ = conn.Write(ctx, websocket.MessageText, event(7, session.OnHold, session.InCall))
		<-ctx.Done()
	}))
	t.Cleanup(srv.Close)

	environ := []string{apiURLEnv + "=" + srv.URL, tokenEnv + "=" + testToken}
	stdout, stderr, stop := watchCommand(t, []string{"sessions", "--watch"}, environ)
	waitOutput(t, stdout, "event #6", 5*time.Second, func(l string) bool { return strings.Contains(l, "#6  0123456789abcdef  IN_CALL → ON_HOLD  test") })
	waitOutput(t, stdout, "event #7 after the reconnection", 5*time.Second, func(l string) bool { return strings.Contains(l, "#7  0123456789abcdef  ON_HOLD → IN_CALL") })
	if code := stop(); code != exitOK {
		t.Errorf("watch ended with exit %d, want 0", code)
	}
	conns.Wait()
	close(queries)
	var got []string
	for q := range queries {
		got = append(got, q)
	}
	if len(got) != 2 || got[0] != "" || got[1] != "since=6" {
		t.Errorf("the watch connected with queries %q; want \"\" then \"since=6\"", got)
	}
	if !strings.Contains(stderr.String(), "client too slow") || !strings.Contains(stderr.String(), "reconnecting") {
		t.Errorf("stderr does not say why the stream was lost and that it reconnects:\n%s", stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), testToken) {
		t.Errorf("the output shows the token")
	}
}

func TestTokenNewPrintsATokenAndItsHashForTheConfig(t *testing.T) {
	var tokens []string
	for range 2 {
		var out, errOut bytes.Buffer
		if code := run([]string{"token", "new"}, nil, &out, &errOut); code != exitOK {
			t.Fatalf("token new: exit %d: %s", code, errOut.String())
		}
		token := regexp.MustCompile(`(?m)^token: (cc_\S+)$`).FindStringSubmatch(out.String())
		hash := regexp.MustCompile(`(?m)^\s*token_hash: "(sha256:[0-9a-f]{64})"$`).FindStringSubmatch(out.String())
		if token == nil || hash == nil {
			t.Fatalf("token new printed no token line or no token_hash line:\n%s", out.String())
		}
		if got := auth.HashToken(token[1]); got != hash[1] {
			t.Errorf("token_hash %s is not the hash of the token (%s)", hash[1], got)
		}
		if !strings.Contains(out.String(), "shown once") {
			t.Errorf("token new does not say the token is shown once:\n%s", out.String())
		}
		tokens = append(tokens, token[1])
	}
	if tokens[0] == tokens[1] {
		t.Errorf("two runs printed the same token %s", tokens[0])
	}
}

func TestClientCommandUsageErrorsExitTwoAndSayTheUsage(t *testing.T) {
	environ := []string{apiURLEnv + "=http://127.0.0.1:1", tokenEnv + "=" + testToken} // nothing is contacted
	tests := []struct {
		name   string
		args   []string
		env    []string
		stderr []string
	}{
		{"hold without an ID", []string{"hold"}, environ, []string{"missing ID", "usage: callctl hold [flags] ID"}},
		{"hold with two IDs", []string{"hold", "a", "b"}, environ, []string{`unexpected ["b"]`, "usage: callctl hold"}},
		{"transfer without a target", []string{"transfer", "id", "1000"}, environ, []string{"missing TARGET", "usage: callctl transfer [flags] ID TRANSFEROR TARGET"}},
		{"dtmf without keys", []string{"dtmf", "id", "1000"}, environ, []string{"missing KEYS", "usage: callctl dtmf [flags] ID PARTY KEYS"}},
		{"forward with too much", []string{"forward", "id", "300", "400"}, environ, []string{"unexpected", "usage: callctl forward"}},
		{"sessions with an argument", []string{"sessions", "now"}, environ, []string{"takes no arguments", "usage: callctl sessions"}},
		{"unknown flag", []string{"sessions", "--wach"}, environ, []string{"-wach", "usage: callctl sessions"}},
		{"unknown flag of an operation", []string{"hold", "id", "--force"}, environ, []string{"-force", "usage: callctl hold"}},
		{"bad state", []string{"sessions", "--state", "TALKING"}, environ, []string{`"TALKING" is not a state`, "IN_CALL", "ON_HOLD"}},
		{"bad timeout", []string{"hold", "id", "--timeout", "0s"}, environ, []string{"--timeout"}},
		{"token without new", []string{"token"}, nil, []string{"usage: callctl token new"}},
		{"token old", []string{"token", "old"}, nil, []string{"usage: callctl token new"}},
		{"no token anywhere", []string{"hold", "id"}, []string{apiURLEnv + "=http://127.0.0.1:1"}, []string{"no API token", tokenEnv}},
		{"API URL not http", []string{"hold", "id", "--api-url", "ftp://host:21"}, environ, []string{`"ftp://host:21"`, "http://HOST:PORT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, tt.env, &out, &errOut); code != exitUsage {
				t.Errorf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}

func TestClientCommandHelpAndUnreachableAPI(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"transfer", "-h"}, nil, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "Usage: callctl transfer [flags] ID TRANSFEROR TARGET") || !strings.Contains(out.String(), "-api-url URL") {
		t.Errorf("transfer -h: exit %d, stdout:\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"help"}, nil, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "transfer [flags] ID TRANSFEROR TARGET") || !strings.Contains(out.String(), "token new") {
		t.Errorf("help does not list the client commands:\n%s", out.String())
	}
	errOut.Reset()
	environ := []string{apiURLEnv + "=http://127.0.0.1:1", tokenEnv + "=" + testToken}
	if code := run([]string{"hold", "id"}, environ, &out, &errOut); code != exitRuntime || !strings.Contains(errOut.String(), "cannot reach the API at http://127.0.0.1:1") {
		t.Errorf("hold with no API listening: exit %d, stderr %q; want 1 and \"cannot reach the API\"", code, errOut.String())
	}
}

func TestAPIAddressAndTokenComeFromFlagsThenEnvironmentThenConfig(t *testing.T) {
	tlsConfig := writeConfig(t, "api:\n  listen: 0.0.0.0:8443\n  tls_cert: cert.pem\n  tls_key: key.pem\n")
	tests := []struct {
		name      string
		args      []string
		environ   []string
		wantURL   string
		wantToken string
	}{
		{"defaults: api.listen of the built-in config", nil, []string{tokenEnv + "=t"}, "http://127.0.0.1:8080", "t"},
		{"CALLCTL_API_LISTEN", nil, []string{"CALLCTL_API_LISTEN=127.0.0.2:9000", tokenEnv + "=t"}, "http://127.0.0.2:9000", "t"},
		{"all interfaces are reached on loopback", nil, []string{"CALLCTL_API_LISTEN=0.0.0.0:9000", tokenEnv + "=t"}, "http://127.0.0.1:9000", "t"},
		{"IPv6 any", nil, []string{"CALLCTL_API_LISTEN=[::]:9000", tokenEnv + "=t"}, "http://[::1]:9000", "t"},
		{"config file with TLS", []string{"--config", tlsConfig}, []string{tokenEnv + "=t"}, "https://127.0.0.1:8443", "t"},
		{"CALLCTL_CONFIG with TLS", nil, []string{configEnv + "=" + tlsConfig, tokenEnv + "=t"}, "https://127.0.0.1:8443", "t"},
		{"CALLCTL_API_URL over the config", nil, []string{apiURLEnv + "=https://pbx.example:8443/", "CALLCTL_API_LISTEN=0.0.0.0:9000", tokenEnv + "=t"}, "https://pbx.example:8443", "t"},
		{"--api-url over CALLCTL_API_URL", []string{"--api-url", "http://10.0.0.1:8080"}, []string{apiURLEnv + "=http://x:1", tokenEnv + "=t"}, "http://10.0.0.1:8080", "t"},
		{"CALLCTL_ADMIN_TOKEN when no CALLCTL_TOKEN", nil, []string{adminTokenEnv + "=admin"}, "http://127.0.0.1:8080", "admin"},
		{"CALLCTL_TOKEN over CALLCTL_ADMIN_TOKEN", nil, []string{adminTokenEnv + "=admin", tokenEnv + "=client"}, "http://127.0.0.1:8080", "client"},
		{"--token over the environment", []string{"--token", "flag"}, []string{adminTokenEnv + "=admin", tokenEnv + "=client"}, "http://127.0.0.1:8080", "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o clientOptions
			fs := newClientFlagSet("callctl hold", &o, nil)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := newAPIClient(o, tt.environ)
			if err != nil {
				t.Fatalf("newAPIClient: %v", err)
			}
			defer c.close()
			if c.base != tt.wantURL || c.token != tt.wantToken {
				t.Errorf("API %s with token %q; want %s with %q", c.base, c.token, tt.wantURL, tt.wantToken)
			}
		})
	}
}
