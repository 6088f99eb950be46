package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"regexp"
	"testing"
)

func TestNewTokenRoundTrip(t *testing.T) {
	tokenRE := regexp.MustCompile(`^cc_[A-Za-z0-9_-]{43}$`)
	hashRE := regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for range 200 {
		token, hash, err := NewToken()
		if err != nil {
			t.Fatalf("NewToken: %v", err)
		}
		if !tokenRE.MatchString(token) || !hashRE.MatchString(hash) {
			t.Fatalf("NewToken() = %q, %q", token, hash)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(token[3:]); err != nil || len(raw) != 32 {
			t.Fatalf("token %q does not carry 32 bytes: %d, %v", token, len(raw), err)
		}
		if HashToken(token) != hash {
			t.Fatalf("HashToken(%q) = %q, NewToken said %q", token, HashToken(token), hash)
		}
		if _, ok := parseHash(hash); !ok {
			t.Fatalf("hash %q does not parse", hash)
		}
		if seen[token] {
			t.Fatalf("NewToken repeated %q", token)
		}
		seen[token] = true
	}
}

func TestHashTokenIsSHA256Hex(t *testing.T) {
	for token, want := range map[string]string{
		"":    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	} {
		if got := HashToken(token); got != want {
			t.Errorf("HashToken(%q) = %s, want %s", token, got, want)
		}
	}
	if h, _ := parseHash(HashToken("abc")); h != sha256.Sum256([]byte("abc")) {
		t.Error("parseHash does not invert HashToken")
	}
}

func TestTokenFromRequest(t *testing.T) {
	ws := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		target  string
		headers map[string]string
		want    string
	}{
		{"bearer header", "/api/v1/sessions", map[string]string{"Authorization": "Bearer cc_abc"}, "cc_abc"},
		{"scheme is case-insensitive", "/", map[string]string{"Authorization": "bearer cc_abc"}, "cc_abc"},
		{"extra spaces", "/", map[string]string{"Authorization": "Bearer   cc_abc "}, "cc_abc"},
		{"no header", "/", nil, ""},
		{"basic auth is no token", "/", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, ""},
		{"bearer without token", "/", map[string]string{"Authorization": "Bearer"}, ""},
		{"query ignored without upgrade", "/api/v1/sessions?access_token=cc_q", nil, ""},
		{"protocol ignored without upgrade", "/", map[string]string{"Sec-WebSocket-Protocol": "callctl, bearer.cc_p"}, ""},
		{"websocket protocol", "/api/v1/events", with(ws, "Sec-WebSocket-Protocol", "callctl, bearer.cc_p"), "cc_p"},
		{"websocket protocol first", "/api/v1/events", with(ws, "Sec-WebSocket-Protocol", "bearer.cc_p,callctl"), "cc_p"},
		{"websocket empty bearer protocol", "/api/v1/events", with(ws, "Sec-WebSocket-Protocol", "bearer., callctl"), ""},
		{"websocket query", "/api/v1/events?access_token=cc_q", ws, "cc_q"},
		{"upgrade token any case", "/api/v1/events?access_token=cc_q", map[string]string{"Upgrade": "WebSocket"}, "cc_q"},
		{"protocol beats query", "/api/v1/events?access_token=cc_q", with(ws, "Sec-WebSocket-Protocol", "bearer.cc_p"), "cc_p"},
		{"header beats both", "/api/v1/events?access_token=cc_q", with(ws, "Sec-WebSocket-Protocol", "bearer.cc_p", "Authorization", "Bearer cc_h"), "cc_h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := TokenFromRequest(r); got != tt.want {
				t.Errorf("TokenFromRequest = %q, want %q", got, tt.want)
			}
		})
	}
}
