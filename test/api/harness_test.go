package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
	"github.com/callctl/callctl/web"
)

// adminToken is CALLCTL_ADMIN_TOKEN (admin.token) in every test: the
// all-privileges client named "admin".
const adminToken = "api-test-admin-token"

// clientSpec is an API client to configure: a token is made for it with
// auth.NewToken and only the hash goes into the configuration.
type clientSpec struct {
	name    string
	privs   []auth.Privilege
	scope   []string
	targets []string // transfer/forward target patterns (clients[].targets)
}

// server is one callctl running in-process, reached by the tests only
// through its HTTP API and event stream.
type server struct {
	cfg    config.Config
	url    string            // http://127.0.0.1:port
	tokens map[string]string // client name → bearer token
	client *http.Client
	logs   *observer.ObservedLogs
}

// startServer starts callctl on free loopback ports with the given API
// clients (plus the admin token) and lets configure change the rest,
// typically the routes to the test's SIPp callees. The test's cleanup stops
// it and then checks that no token ever reached its logs.
func startServer(t *testing.T, clients []clientSpec, configure func(*config.Config)) *server {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	cfg.SIP.Allow = []string{"127.0.0.0/8"}
	cfg.API.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, 64)
	cfg.Media.IP = "127.0.0.1"
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Media.Timeout = 20 * time.Second
	cfg.Calls.RingTimeout = 10 * time.Second
	cfg.Calls.TransferTimeout = 5 * time.Second
	cfg.Calls.TransferGrace = 300 * time.Millisecond
	cfg.Shutdown.DrainTimeout = time.Second
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = adminToken
	tokens := map[string]string{"admin": adminToken}
	for _, c := range clients {
		token, hash, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		privs := make([]string, len(c.privs))
		for i, p := range c.privs {
			privs[i] = string(p)
		}
		cfg.Clients = append(cfg.Clients, config.Client{Name: c.name, TokenHash: hash, Privileges: privs, Scope: c.scope, Targets: c.targets})
		tokens[c.name] = token
	}
	if configure != nil {
		configure(&cfg)
	}

	observed, logs := observer.New(zapcore.DebugLevel)
	log := zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel),
		zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, observed) })))
	a, err := app.NewWithOptions(cfg, log, app.Options{Web: web.FS(), Out: io.Discard})
	if err != nil {
		t.Fatalf("app.NewWithOptions: %v", err)
	}
	s := &server{cfg: cfg, url: a.APIURL(), tokens: tokens, logs: logs,
		client: &http.Client{Timeout: 30 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("callctl Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("callctl still running 20 s after cancel")
		}
		s.expectNoTokenLogged(t)
	})
	return s
}

// sentTokens are wrong tokens tests sent; they must not be logged either.
var sentTokens sync.Map

// expectNoTokenLogged checks that no bearer token, right or wrong, appears
// in any log line (message or field) callctl wrote.
func (s *server) expectNoTokenLogged(t *testing.T) {
	t.Helper()
	var secrets []string
	for _, tok := range s.tokens {
		secrets = append(secrets, tok)
	}
	sentTokens.Range(func(k, _ any) bool { secrets = append(secrets, k.(string)); return true })
	for _, e := range s.logs.All() {
		line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		for _, secret := range secrets {
			if strings.Contains(line, secret) {
				t.Errorf("callctl logged a bearer token: %q", line)
			}
		}
	}
}

// reply is an HTTP answer.
type reply struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.method, r.path, r.status, bytes.TrimSpace(r.body))
}

// apiError is the {"error":{...}} body of a refusal.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field"`
	SIPStatus int    `json:"sipStatus"`
}

// apiError decodes the error body; a body that is not one is a test error.
func (r reply) apiError(t *testing.T) apiError {
	t.Helper()
	var body struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error == nil {
		t.Errorf("%v: body is not {\"error\":{\"code\",\"message\"}}", r)
		return apiError{}
	}
	return *body.Error
}

// expectError checks the reply is status with error code, and returns the
// error for more checks.
func (r reply) expectError(t *testing.T, status int, code string) apiError {
	t.Helper()
	if r.status != status {
		t.Errorf("%v; want %d %s", r, status, code)
		return apiError{}
	}
	e := r.apiError(t)
	if e.Code != code {
		t.Errorf("%v: code %q; want %q", r, e.Code, code)
	}
	if e.Message == "" {
		t.Errorf("%v: empty message", r)
	}
	return e
}

// decode unmarshals the body into v, failing the test if it cannot.
func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%v: %v", r, err)
	}
}

// do sends a request from 127.0.0.1 with token ("" for none); a non-empty
// body is sent as application/json.
func (s *server) do(t *testing.T, token, method, path, body string) reply {
	t.Helper()
	return s.send(t, s.client, token, method, path, body)
}

// doFrom is do from another loopback source address (127.0.0.2, ...):
// failed authentications are counted per source.
func (s *server) doFrom(t *testing.T, source, token, method, path, body string) reply {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	return s.send(t, c, token, method, path, body)
}

func (s *server) send(t *testing.T, c *http.Client, token, method, path, body string) reply {
	t.Helper()
	authz := ""
	if token != "" {
		authz = "Bearer " + token
	}
	return s.sendAuthorization(t, c, authz, method, path, body)
}

// sendAuthorization sends a request with this Authorization header ("" for
// none).
func (s *server) sendAuthorization(t *testing.T, c *http.Client, authz, method, path, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return reply{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: data}
}

// sessionView is the part of a session's JSON the tests read.
type sessionView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Callee struct {
		Number string `json:"number"`
	} `json:"callee"`
	Dialled   string    `json:"dialled"`
	Answer    time.Time `json:"answer"`
	EndReason string    `json:"endReason"`
}

// sessions is GET /api/v1/sessions as client.
func (s *server) sessions(t *testing.T, client, query string) []sessionView {
	t.Helper()
	r := s.do(t, s.tokens[client], "GET", "/api/v1/sessions"+query, "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var body struct {
		Sessions []sessionView `json:"sessions"`
	}
	r.decode(t, &body)
	return body.Sessions
}

// session is GET /api/v1/sessions/{id} as admin.
func (s *server) session(t *testing.T, id string) sessionView {
	t.Helper()
	r := s.do(t, adminToken, "GET", "/api/v1/sessions/"+id, "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var v sessionView
	r.decode(t, &v)
	return v
}

// call is a SIPp caller and callee talking through callctl.
type call struct {
	uac, uas       *peers.SIPp
	id             string
	caller, callee string
}

// callee starts a SIPp callee (uas_api_party.xml) in dir, which must hold
// tone.raw; route callctl's calls to it with routeTo.
func callee(t *testing.T, dir string) *peers.SIPp {
	t.Helper()
	return peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_api_party.xml"), Dir: dir, Timeout: 90 * time.Second})
}

// routeTo sends calls for number to a SIPp callee.
func routeTo(number string, uas *peers.SIPp) config.Route {
	return config.Route{Match: number, Target: "sip:{number}@" + uas.LocalAddr()}
}

// dial has a SIPp caller (uac_api_party.xml) with number caller call
// callee, routed to uas, and returns once the API shows the session
// IN_CALL and the callee has acknowledged the answer.
func (s *server) dial(t *testing.T, uas *peers.SIPp, dir, caller, number string) *call {
	t.Helper()
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_api_party.xml"),
		RemoteAddr: s.cfg.SIP.Listen,
		Service:    number,
		Keys:       map[string]string{"caller": caller},
		Dir:        dir,
		Timeout:    90 * time.Second,
	})
	c := &call{uac: uac, uas: uas, caller: caller, callee: number}
	var list []sessionView
	if !eventually(10*time.Second, func() bool {
		list = s.sessions(t, "admin", "?number="+number)
		for _, v := range list {
			if v.State == "IN_CALL" {
				c.id = v.ID
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no IN_CALL session for %s → %s within 10 s; sessions: %+v\ncaller errors:\n%s\ncallee errors:\n%s",
			caller, number, list, uac.Errors(), uas.Errors())
	}
	if !eventually(5*time.Second, func() bool { return slices.Equal(methods(received(uas)), []string{"INVITE", "ACK"}) }) {
		t.Fatalf("callee received %v; want INVITE, ACK", methods(received(uas)))
	}
	return c
}

// hangupIfLive ends c through the API (as admin) unless it has ended.
func hangupIfLive(t *testing.T, s *server, c *call) {
	t.Helper()
	r := s.do(t, adminToken, "GET", "/api/v1/sessions/"+c.id, "")
	if r.status != http.StatusOK {
		return // closed and released
	}
	var v sessionView
	r.decode(t, &v)
	if !endedState(v.State) {
		if r := s.do(t, adminToken, "POST", "/api/v1/sessions/"+c.id+"/hangup", ""); r.status != http.StatusOK {
			t.Errorf("%v; want 200", r)
		}
	}
}

// sipMessage is one SIP message from a SIPp message trace (-trace_msg).
type sipMessage struct{ text string }

// method is the request's method, "" for a response.
func (m sipMessage) method() string {
	first, _, _ := strings.Cut(m.text, "\n")
	f := strings.Fields(first)
	if len(f) < 3 || strings.HasPrefix(f[0], "SIP/") {
		return ""
	}
	return f[0]
}

// header returns the first value of header name ("" when absent).
func (m sipMessage) header(name string) string {
	for _, line := range strings.Split(m.text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// body is what follows the header.
func (m sipMessage) body() string {
	t := strings.ReplaceAll(m.text, "\r\n", "\n")
	_, b, _ := strings.Cut(t, "\n\n")
	return b
}

// received is every request SIPp received, in order, from its message
// trace; a retransmission (same method, CSeq and Via branch) counts once.
func received(s *peers.SIPp) []sipMessage {
	var out []sipMessage
	seen := map[string]bool{}
	for _, block := range strings.Split(s.Messages(), "-----------------------------------------------")[1:] {
		_, rest, _ := strings.Cut(block, "\n") // the date
		what, text, _ := strings.Cut(rest, "\n")
		m := sipMessage{text: strings.TrimLeft(text, "\r\n")}
		if !strings.Contains(what, "received") || m.method() == "" {
			continue
		}
		key := m.method() + "|" + m.header("CSeq") + "|" + m.header("Via")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, m)
	}
	return out
}

// methods lists the methods of msgs.
func methods(msgs []sipMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.method()
	}
	return out
}

// streamMsg is one message of the event stream: a control message (HELLO,
// RESUME_FAILED) or a session event.
type streamMsg struct {
	Type      string `json:"type"`
	Seq       uint64 `json:"seq"`
	OldestSeq uint64 `json:"oldestSeq"`
	Message   string `json:"message"`
	SessionID string `json:"sessionId"`
	State     string `json:"state"`
	Previous  string `json:"previous"`
	Session   struct {
		Caller struct {
			Number string `json:"number"`
		} `json:"caller"`
		Callee struct {
			Number string `json:"number"`
		} `json:"callee"`
	} `json:"session"`
	Operation *struct {
		Name   string `json:"name"`
		Result string `json:"result"`
	} `json:"operation"`
	Listen *struct {
		ListenID string `json:"listenId"`
		Client   string `json:"client"`
		Reason   string `json:"reason"`
	} `json:"listen"`
	Node string `json:"node"` // the owner, for another node's session
}

func (m streamMsg) String() string {
	switch {
	case m.Operation != nil:
		return fmt.Sprintf("#%d %s %s %s:%s (%s)", m.Seq, m.Type, m.SessionID, m.Operation.Name, m.Operation.Result, m.State)
	case m.SessionID != "":
		return fmt.Sprintf("#%d %s %s %s→%s", m.Seq, m.Type, m.SessionID, m.Previous, m.State)
	}
	return fmt.Sprintf("#%d %s oldest=%d %s", m.Seq, m.Type, m.OldestSeq, m.Message)
}

// stream is a WebSocket connection to /api/v1/events whose messages are
// collected in the background.
type stream struct {
	conn *websocket.Conn
	done chan struct{}

	mu     sync.Mutex
	msgs   []streamMsg
	errs   []string // undecodable messages
	closed error    // why reading stopped
}

// openStream connects to the event stream with token in the Authorization
// header; query is "" or "?since=N".
func (s *server) openStream(t *testing.T, token, query string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/events" + query
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connecting to %s: %v (HTTP %d)", url, err, status)
	}
	conn.SetReadLimit(1 << 20)
	st := &stream{conn: conn, done: make(chan struct{})}
	go st.read()
	t.Cleanup(st.close)
	return st
}

func (st *stream) read() {
	defer close(st.done)
	for {
		_, data, err := st.conn.Read(context.Background())
		if err != nil {
			st.mu.Lock()
			st.closed = err
			st.mu.Unlock()
			return
		}
		var m streamMsg
		st.mu.Lock()
		if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
			st.errs = append(st.errs, string(data))
		} else {
			st.msgs = append(st.msgs, m)
		}
		st.mu.Unlock()
	}
}

// close ends the connection from our side and waits for the reader.
func (st *stream) close() {
	st.conn.Close(websocket.StatusNormalClosure, "")
	select {
	case <-st.done:
	case <-time.After(5 * time.Second):
		st.conn.CloseNow()
		<-st.done
	}
}

// messages is a copy of what arrived so far.
func (st *stream) messages() []streamMsg {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.msgs)
}

// waitFor waits until cond holds for the messages so far and returns them.
func (st *stream) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]streamMsg) bool) []streamMsg {
	t.Helper()
	var msgs []streamMsg
	if !eventually(timeout, func() bool { msgs = st.messages(); return cond(msgs) }) {
		st.mu.Lock()
		closed, errs := st.closed, st.errs
		st.mu.Unlock()
		t.Fatalf("event stream: no %s within %v (stream ended: %v; undecodable: %q); got:\n%s", what, timeout, closed, errs, describe(msgs))
	}
	return msgs
}

// hasState reports whether msgs hold session id entering state.
func hasState(msgs []streamMsg, id, state string) bool {
	return slices.ContainsFunc(msgs, func(m streamMsg) bool {
		return m.Type == "STATE_CHANGED" && m.SessionID == id && m.State == state
	})
}

// events drops the control messages.
func events(msgs []streamMsg) []streamMsg {
	return slices.DeleteFunc(slices.Clone(msgs), func(m streamMsg) bool { return m.SessionID == "" })
}

func describe(msgs []streamMsg) string {
	if len(msgs) == 0 {
		return "  none"
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  %v\n", m)
	}
	return b.String()
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
