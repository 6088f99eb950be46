package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/session"
)

const testToken = "middleware-test-token"

// panicServer is an API with routes that panic, registered by the test
// only: one authenticated route taking a body, one that panics after it
// began its answer, and a WebSocket that panics after the upgrade.
func panicServer(t *testing.T, opts Options) (*httptest.Server, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	a := &auth.Authenticator{}
	a.AddClient(auth.NewAdmin(), auth.HashToken(testToken))
	opts.Engine = session.NewEngine(session.Config{MaxSessions: 1}, zap.NewNop(), nil, session.NewRegistry(0))
	opts.Auth, opts.Log = a, zap.New(core)
	s := New(opts)
	s.handle("POST /api/v1/test/{id}/panic", "", func(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
		var body forwardBody
		if he := decodeBody(r, &body); he != nil {
			return he
		}
		panic("deliberate test panic")
	})
	s.mux.HandleFunc("GET /test/late-panic", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		panic("deliberate test panic after the answer began")
	})
	s.mux.HandleFunc("GET /test/ws-panic", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = conn.CloseRead(r.Context())
		panic("deliberate test panic in a WebSocket")
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, logs
}

func send(t *testing.T, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, url, err)
	}
	return res, data
}

// panicsMetric is the value of callctl_api_panics_total in /metrics.
func panicsMetric(t *testing.T, base string) string {
	t.Helper()
	res, body := send(t, "GET", base+"/metrics", testToken, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, body)
	}
	const prefix = "callctl_api_panics_total "
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimPrefix(line, prefix)
		}
	}
	t.Fatalf("/metrics has no %s line:\n%s", prefix, body)
	return ""
}

// A panic in a handler is answered 500 with the usual error body and the
// security headers, logged once at ERROR with the route pattern (never the
// path, token or body) and counted; the server goes on serving.
func TestPanicInAHandlerIsAnswered500LoggedOnceAndCounted(t *testing.T) {
	srv, logs := panicServer(t, Options{})
	if got := panicsMetric(t, srv.URL); got != "0" {
		t.Fatalf("before any panic callctl_api_panics_total = %s; want 0", got)
	}
	const secretBody = `{"target":"sip:secret-body@127.0.0.1"}`
	res, body := send(t, "POST", srv.URL+"/api/v1/test/5ecret1d/panic", testToken, secretBody)
	var e errorBody
	if res.StatusCode != http.StatusInternalServerError || json.Unmarshal(body, &e) != nil || e.Error.Code != "internal" || e.Error.Message == "" {
		t.Errorf("panicking route: %d %s; want 500 with {\"error\":{\"code\":\"internal\",...}}", res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); csp != ContentSecurityPolicy {
		t.Errorf("500 after a panic: Content-Security-Policy %q; want %q", csp, ContentSecurityPolicy)
	}

	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("%d ERROR lines for one panic; want 1: %v", len(errs), errs)
	}
	if route := errs[0].ContextMap()["route"]; route != "POST /api/v1/test/{id}/panic" {
		t.Errorf("panic logged with route %v; want the pattern POST /api/v1/test/{id}/panic", route)
	}
	for _, entry := range logs.All() {
		line := fmt.Sprintf("%s %v", entry.Message, entry.ContextMap())
		for _, secret := range []string{testToken, "secret-body", "5ecret1d"} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds %q (token, body or path): %s", secret, line)
			}
		}
	}

	// The answer had begun: it ends as it was; the panic is still counted.
	res, body = send(t, "GET", srv.URL+"/test/late-panic", "", "")
	if res.StatusCode != http.StatusOK || string(body) != "partial" {
		t.Errorf("panic after the answer began: %d %q; want the 200 and body already sent", res.StatusCode, body)
	}

	// A WebSocket whose handler panics is closed, not left open.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/test/ws-panic", nil)
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	if _, _, err := conn.Read(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("WebSocket after its handler panicked: read %v (deadline: %v); want the connection closed", err, ctx.Err())
	}
	conn.CloseNow()

	if got := panicsMetric(t, srv.URL); got != "3" {
		t.Errorf("after three panics callctl_api_panics_total = %s; want 3", got)
	}
	if res, body := send(t, "GET", srv.URL+"/healthz", "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz after the panics: %d %s; want 200", res.StatusCode, body)
	}
	if n := len(logs.FilterLevelExact(zapcore.ErrorLevel).All()); n != 3 {
		t.Errorf("%d ERROR lines for three panics; want 3", n)
	}
}

// Every answer carries the browser hardening headers: health, metrics, a
// refusal, a route that does not exist.
func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	srv, _ := panicServer(t, Options{})
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/healthz", ""}, {"GET", "/metrics", testToken}, {"GET", "/api/v1/sessions", ""},
		{"GET", "/no/such/route", ""}, {"POST", "/api/v1/test/x/panic", testToken},
	} {
		res, _ := send(t, c.method, srv.URL+c.path, c.token, "")
		for h, want := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy, "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s %s (%d): %s %q; want %q", c.method, c.path, res.StatusCode, h, got, want)
			}
		}
	}
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("Content-Security-Policy %q lacks %s", ContentSecurityPolicy, d)
		}
	}
}
