package api

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"
)

// ContentSecurityPolicy is sent with every answer: the console, the SDK
// files and the API's JSON. The console loads its module script, its
// stylesheet and the SDK from callctl itself and has no inline script or
// style; connect-src 'self' covers its fetches and the same-origin ws:/wss:
// event stream (CSP Level 3, 6.7.2.9: 'self' matches the ws/wss schemes of
// an http/https origin). Listen-in audio is a MediaStream (srcObject), which
// no fetch directive governs. Nothing may frame callctl (clickjacking of
// the console's controls), and <base>, plugins and forms to elsewhere are
// refused.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the browser hardening headers on every answer before
// the handler runs, so refusals (401, 404, 429, 500) carry them too.
// X-Frame-Options backs frame-ancestors up for browsers without CSP 2;
// nosniff stops a JSON body or an SDK file from being run as something
// else (Fetch standard, "X-Content-Type-Options"); no-referrer keeps the
// console's URL out of other sites' logs.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// panicCounter counts handler panics recovered by recoverPanics.
type panicCounter struct{ n atomic.Uint64 }

// recoverPanics turns a panic in a handler (HTTP or WebSocket) into one
// ERROR log line naming the route pattern, a count in /metrics and, when
// nothing has been sent yet, a 500 with the usual error body. Only the
// route pattern is logged, never the path, query, headers or body: they
// may hold a token. The server and every other request go on (net/http
// would also survive, but answer nothing and log a stack per panic).
// http.ErrAbortHandler is net/http's way to abort a response and is passed
// on.
func recoverPanics(log *zap.Logger, count *panicCounter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			count.n.Add(1)
			route := r.Pattern
			if route == "" {
				route = r.Method + " (no route)"
			}
			log.Error("API handler panicked; answered 500", zap.String("route", route),
				zap.String("panic", fmt.Sprintf("%.200v", v)), zap.Stack("stack"))
			if tw.conn != nil {
				// A WebSocket: nothing can be answered, and nobody else
				// would close the connection (or stop the goroutines
				// reading it).
				tw.conn.Close()
				return
			}
			if tw.wrote {
				return // the answer has begun; net/http ends it
			}
			writeError(tw, &httpError{http.StatusInternalServerError,
				apiError{Code: "internal", Message: "callctl failed to serve this request; it has been logged"}})
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackingWriter notes whether the answer has begun, so a recovered panic
// writes a 500 only when it still can.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
	// conn is the hijacked connection, if the handler took it over.
	conn net.Conn
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush passes on http.Flusher.
func (w *trackingWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack passes on http.Hijacker, for the WebSocket handshake.
func (w *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("api: the connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err == nil {
		w.conn = conn
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
