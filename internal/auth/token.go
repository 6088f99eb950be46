package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
)

// tokenPrefix marks callctl tokens, so that one pasted where it does not
// belong (a log, a token_hash) is recognisable.
const tokenPrefix = "cc_"

// WebSocketProtocolPrefix starts the Sec-WebSocket-Protocol value that
// carries a token: "bearer.<token>".
const WebSocketProtocolPrefix = "bearer."

// NewToken returns a new random token ("cc_" and 32 random bytes in
// unpadded base64url) and its hash for the configuration (HashToken).
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns what a client's token_hash holds for token:
// "sha256:" and the lowercase hex SHA-256 of the token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// TokenFromRequest returns the bearer token of r, or "" if it has none.
// The token is taken from, in this order:
//
//  1. the Authorization header, "Bearer <token>" (RFC 6750 §2.1). A request
//     with an Authorization header of another scheme has no token.
//  2. for a WebSocket upgrade only, since browsers cannot set headers on
//     one: a Sec-WebSocket-Protocol value "bearer.<token>". The client
//     must offer a second protocol the server picks (for example
//     ["callctl", "bearer.<token>"]), because a browser fails the handshake
//     when the server echoes none of its offers, and the server must never
//     echo the token one.
//  3. for a WebSocket upgrade only: the access_token query parameter
//     (RFC 6750 §2.3). Prefer 2, as URLs end up in logs and histories.
func TokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(token)
	}
	if !isWebSocketUpgrade(r) {
		return ""
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(p), WebSocketProtocolPrefix); ok && t != "" {
				return t
			}
		}
	}
	return r.URL.Query().Get("access_token")
}

// isWebSocketUpgrade reports whether r asks to become a WebSocket
// (RFC 6455 §4.1: Upgrade holds the token "websocket", any case).
func isWebSocketUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}
