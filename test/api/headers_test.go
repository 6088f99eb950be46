package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// securityHeaders are what every answer must carry, whoever asks.
var securityHeaders = map[string]func(string) bool{
	"Content-Security-Policy": func(v string) bool {
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"} {
			if !strings.Contains(v, d) {
				return false
			}
		}
		// Scripts come from callctl only: no inline script, no eval.
		return !strings.Contains(v, "unsafe-inline") && !strings.Contains(v, "unsafe-eval")
	},
	"X-Content-Type-Options": func(v string) bool { return v == "nosniff" },
	"X-Frame-Options":        func(v string) bool { return v == "DENY" },
	"Referrer-Policy":        func(v string) bool { return v == "no-referrer" },
}

func expectSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for name, ok := range securityHeaders {
		if v := h.Get(name); !ok(v) {
			t.Errorf("%s: %s: %q; want it set (CSP: default-src/script-src 'self', frame-ancestors/base-uri/object-src 'none', nothing unsafe)", what, name, v)
		}
	}
}

// The console, the SDK files, the API's answers (a success, a refusal, a
// route that does not exist), the health endpoints, /metrics and the
// WebSocket handshake's refusal all carry CSP, nosniff, anti-framing and
// no-referrer.
func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, nil)
	for _, c := range []struct {
		token, method, path, body string
		status                    int
	}{
		{"", "GET", "/", "", http.StatusOK},
		{"", "GET", "/console.js", "", http.StatusOK},
		{"", "GET", "/console.css", "", http.StatusOK},
		{"", "GET", "/sdk/callctl.js", "", http.StatusOK},
		{"", "GET", "/sdk/callctl.d.ts", "", http.StatusOK},
		{"", "GET", "/healthz", "", http.StatusOK},
		{"", "GET", "/readyz", "", http.StatusOK},
		{adminToken, "GET", "/api/v1/sessions", "", http.StatusOK},
		{adminToken, "GET", "/api/v1/openapi.json", "", http.StatusOK},
		{adminToken, "GET", "/metrics", "", http.StatusOK},
		{"", "GET", "/api/v1/sessions", "", http.StatusUnauthorized},
		{adminToken, "GET", "/api/v1/sessions/0123456789abcdef", "", http.StatusNotFound},
		{adminToken, "POST", "/api/v1/sessions/0123456789abcdef/forward", `{"target":`, http.StatusNotFound},
		{adminToken, "GET", "/api/v1/sessions?state=SLEEPING", "", http.StatusBadRequest},
		{"", "GET", "/no-such-file.html", "", http.StatusNotFound},
		{"", "DELETE", "/healthz", "", http.StatusMethodNotAllowed},
	} {
		r := s.do(t, c.token, c.method, c.path, c.body)
		if r.status != c.status {
			t.Errorf("%v; want %d", r, c.status)
		}
		expectSecurityHeaders(t, r.method+" "+r.path, r.header)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/api/v1/events", nil)
	if err == nil {
		conn.CloseNow()
		t.Fatal("WebSocket handshake without a token succeeded; want 401")
	}
	if resp == nil {
		t.Fatalf("WebSocket handshake: %v, no HTTP answer", err)
	}
	expectSecurityHeaders(t, "WebSocket handshake refused", resp.Header)
}
