package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/web"
)

// documentedRoutes reads the OpenAPI document callctl serves and returns
// every route in it as method and path, {id} and {listenId} filled in.
func documentedRoutes(t *testing.T, s *server) []route {
	t.Helper()
	r := s.do(t, adminToken, "GET", "/api/v1/openapi.json", "")
	if r.status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	r.decode(t, &doc)
	var out []route
	for path, ops := range doc.Paths {
		for method := range ops {
			path := strings.NewReplacer("{id}", "0123456789abcdef", "{listenId}", "l1").Replace(path)
			out = append(out, route{method: strings.ToUpper(method), path: path})
		}
	}
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	if len(out) < 15 {
		t.Fatalf("openapi.json documents only %d routes: %v", len(out), out)
	}
	return out
}

// wrongToken is a well-formed token no client has.
func wrongToken(t *testing.T) string {
	t.Helper()
	token, _, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	sentTokens.Store(token, true)
	return token
}

// Every documented route but /healthz and /readyz answers a request without
// a token, with a token of another scheme, and with a token no client has
// 401 unauthenticated and a WWW-Authenticate: Bearer challenge (RFC 6750
// 3); the WebSocket handshake too. The health endpoints and the SDK files
// under /sdk/ are served to anyone. No token, right or wrong, is logged.
func TestEveryRouteButHealthNeedsAValidToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, nil)
	// Failed authentications are limited per source (10 a minute): spread
	// the wrong tokens over loopback addresses, five to each.
	sent := 0
	source := func() string { sent++; return fmt.Sprintf("127.0.0.%d", 10+sent/5) }
	for _, rt := range documentedRoutes(t, s) {
		if rt.path == "/healthz" || rt.path == "/readyz" {
			r := s.do(t, "", rt.method, rt.path, "")
			if r.status != http.StatusOK || !strings.Contains(string(r.body), `"status"`) {
				t.Errorf("%v without a token; want 200 with a status", r)
			}
			continue
		}
		for _, r := range []reply{
			s.do(t, "", rt.method, rt.path, ""),
			s.basic(t, rt.method, rt.path),
			s.doFrom(t, source(), wrongToken(t), rt.method, rt.path, ""),
		} {
			r.expectError(t, http.StatusUnauthorized, "unauthenticated")
			if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
				t.Errorf("%v: WWW-Authenticate %q; want a Bearer challenge", r, ch)
			}
		}
	}

	ws := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/events"
	for name, opts := range map[string]*websocket.DialOptions{
		"no token":          nil,
		"wrong token":       {HTTPHeader: http.Header{"Authorization": {"Bearer " + wrongToken(t)}}},
		"wrong query token": {},
	} {
		url := ws
		if name == "wrong query token" {
			url += "?access_token=" + wrongToken(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, resp, err := websocket.Dial(ctx, url, opts)
		cancel()
		if err == nil {
			conn.CloseNow()
			t.Errorf("WebSocket handshake with %s succeeded; want 401", name)
		} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("WebSocket handshake with %s: %v (response %v); want 401", name, err, resp)
		}
	}

	public := 0
	if err := fs.WalkDir(web.FS(), "sdk", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := fs.ReadFile(web.FS(), path)
		if err != nil {
			return err
		}
		public++
		if r := s.do(t, "", "GET", "/"+path, ""); r.status != http.StatusOK || string(r.body) != string(want) {
			t.Errorf("GET /%s without a token → %d (%d bytes); want 200 and the file's %d bytes", path, r.status, len(r.body), len(want))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if public == 0 {
		t.Error("web.FS() has no files under sdk/ to serve")
	}
}

// basic sends the admin's token with the Basic scheme, which is no bearer
// token at all.
func (s *server) basic(t *testing.T, method, path string) reply {
	t.Helper()
	r := s.sendAuthorization(t, s.client, "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+adminToken)), method, path, "")
	r.path += " (Basic)"
	return r
}

// Ten wrong tokens from one address lock that address out for wrong
// tokens: the next wrong one gets 429 rate_limited, but the right token
// from that very address is served (a guesser behind the same NAT must not
// lock the real client out), and so is another address.
func TestWrongTokensLockOutTheirSourceOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, nil)
	const guesser = "127.0.0.200"
	for i := range 10 {
		r := s.doFrom(t, guesser, wrongToken(t), "GET", "/api/v1/sessions", "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("wrong token %d of 10: %v; want 401", i+1, r)
		}
	}
	s.doFrom(t, guesser, wrongToken(t), "GET", "/api/v1/sessions", "").expectError(t, http.StatusTooManyRequests, "rate_limited")
	for range 3 {
		if r := s.doFrom(t, guesser, adminToken, "GET", "/api/v1/sessions", ""); r.status != http.StatusOK {
			t.Errorf("the right token from %s while it is locked out: %v; want 200", guesser, r)
		}
	}
	s.doFrom(t, guesser, wrongToken(t), "GET", "/api/v1/me", "").expectError(t, http.StatusTooManyRequests, "rate_limited")
	if r := s.do(t, adminToken, "GET", "/api/v1/sessions", ""); r.status != http.StatusOK {
		t.Errorf("from 127.0.0.1 while %s is locked out: %v; want 200", guesser, r)
	}
}
