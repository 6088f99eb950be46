package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/session"
	"go.uber.org/zap"
)

// Options are what the API serves.
type Options struct {
	Engine *session.Engine
	Auth   *auth.Authenticator
	Audit  *audit.Store
	Log    *zap.Logger
	// EventBuffer is how many recent events a client can resume from.
	EventBuffer int
	// Static is served at / (the SDK under sdk/, later the console); nil
	// serves nothing there.
	Static fs.FS
	// Ready reports whether callctl takes calls (for /readyz).
	Ready func() bool
	// SIPStats, when set, adds SIP counters to /metrics.
	SIPStats func() map[string]uint64
	// SIPRefused, when set, adds the count of requests refused by the SIP
	// allow-list to /metrics.
	SIPRefused func() uint64
	// SIPDropped, when set, adds the SIP messages dropped unanswered, by
	// reason (refused, rate_limited, blocked, scanner, unparsable,
	// bad_response), to /metrics.
	SIPDropped func() map[string]uint64
	// SIPLargeMessages, when set, adds the requests over UDP's 1,300 bytes
	// callctl sent, by the transport they went on.
	SIPLargeMessages func() map[string]uint64
	// SIPPanics, when set, adds the SIP handler panics recovered.
	SIPPanics func() uint64
	// SIPSendFailures, when set, adds the SIP messages callctl could not
	// send, by reason (connect: no connection or a failed TLS handshake,
	// too_large, write).
	SIPSendFailures func() map[string]uint64
	// MediaForeign, when set, adds the RTP and RTCP packets dropped
	// because their source was not the party's (media.latching).
	MediaForeign func() uint64
	// SRTPDropped, when set, adds the SRTP and SRTCP packets dropped
	// for failing authentication or replay protection.
	SRTPDropped func() uint64
	// StoreWrites, when set, adds the live-call store's writes by
	// result (ok, failed, conflict).
	StoreWrites func() map[string]uint64
	// Reload, when set, re-reads callctl's configuration (POST
	// /api/v1/config/reload, reload.go); its error is a
	// *config.RestartError or says what is invalid.
	Reload func() (ReloadOutcome, error)
	// ConfigReloads, when set, adds the reloads by result (ok, refused).
	ConfigReloads func() map[string]uint64
}

// opTimeout bounds how long a request waits for an operation's outcome; a
// transfer waits for its final NOTIFY.
const opTimeout = 60 * time.Second

// Server is the HTTP API.
type Server struct {
	opts    Options
	eng     *session.Engine
	reg     *session.Registry
	log     *zap.Logger
	mux     *http.ServeMux
	hub     *hub
	metrics *metrics
	panics  panicCounter
	// routes lists "METHOD /path" of every API route, for the OpenAPI test.
	routes []string
	// records reads audit and call records across a cluster's nodes; nil
	// reads this node's database only.
	records Records
}

// New builds the API; call Start to begin streaming events and Close to stop.
func New(opts Options) *Server {
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 10000
	}
	s := &Server{opts: opts, eng: opts.Engine, reg: opts.Engine.Registry(), log: opts.Log, mux: http.NewServeMux()}
	s.metrics = newMetrics()
	s.hub = newHub(s.reg, opts.EventBuffer, s.log, &s.panics)

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if opts.Ready != nil && !opts.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.handle("GET /metrics", "", s.getMetrics)
	s.handle("GET /api/v1/openapi.json", "", s.getOpenAPI)
	s.handle("GET /api/v1/me", "", s.getMe)
	s.handle("GET /api/v1/sessions", auth.SessionsView, s.listSessions)
	s.handle("GET /api/v1/sessions/{id}", auth.SessionsView, s.getSession)
	s.handle("GET /api/v1/events", auth.SessionsView, s.events)
	s.handle("GET /api/v1/audit", auth.AuditView, s.getAudit)
	s.handle("GET /api/v1/calls", auth.AuditView, s.getCalls)
	s.handle("POST /api/v1/config/reload", "", s.reloadConfig) // checks auth.ConfigReload itself

	s.op("hold", auth.SessionsHold, nil, func(ctx context.Context, id string, _ any) error { return s.eng.Hold(ctx, id) })
	s.op("unhold", auth.SessionsHold, nil, func(ctx context.Context, id string, _ any) error { return s.eng.Unhold(ctx, id) })
	s.op("hangup", auth.SessionsHangup, nil, func(ctx context.Context, id string, _ any) error { return s.eng.Hangup(ctx, id) })
	s.op("close", auth.SessionsHangup, nil, func(ctx context.Context, id string, _ any) error { return s.eng.Close(ctx, id) })
	s.op("close-with-hangup", auth.SessionsHangup, nil, func(ctx context.Context, id string, _ any) error {
		return s.eng.CloseWithHangup(ctx, id)
	})
	s.op("transfer", auth.SessionsTransfer, func() any { return &transferBody{} }, func(ctx context.Context, id string, b any) error {
		t := b.(*transferBody)
		return s.eng.BlindTransfer(ctx, id, t.Transferor, t.Target)
	})
	s.op("forward", auth.SessionsForward, func() any { return &forwardBody{} }, func(ctx context.Context, id string, b any) error {
		return s.eng.Forward(ctx, id, b.(*forwardBody).Target)
	})
	s.op("dtmf", auth.SessionsDTMF, func() any { return &dtmfBody{} }, func(ctx context.Context, id string, b any) error {
		d := b.(*dtmfBody)
		keys := d.Key
		if d.Keys != "" {
			keys = d.Keys
		}
		return s.eng.SendDtmf(ctx, id, keys, d.Party)
	})
	s.handle("POST /api/v1/sessions/{id}/listen", auth.SessionsListen, s.startListen)
	s.handle("DELETE /api/v1/sessions/{id}/listen/{listenId}", auth.SessionsListen, s.stopListen)

	if opts.Static != nil {
		files := http.FileServerFS(opts.Static)
		s.mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The system MIME table may call .ts an MPEG stream.
			if strings.HasSuffix(r.URL.Path, ".d.ts") {
				w.Header().Set("Content-Type", "application/typescript; charset=utf-8")
			}
			files.ServeHTTP(w, r)
		}))
	}
	return s
}

type transferBody struct {
	Transferor string `json:"transferor"`
	Target     string `json:"target"`
}

type forwardBody struct {
	Target string `json:"target"`
}

// targeted is a body naming a transfer or forward target.
type targeted interface {
	// target returns the session operation and the target.
	target() (op, target string)
}

func (b *transferBody) target() (string, string) { return "blindTransfer", b.Target }
func (b *forwardBody) target() (string, string)  { return "forward", b.Target }

// checkTarget refuses, before the operation runs, a target the policy
// refuses (400, naming the allowed hosts or schemes) and a number outside
// the client's targets patterns (403, naming the target). A malformed
// target is refused as the operation would refuse it (400).
func (s *Server) checkTarget(c *auth.Client, b targeted) *httpError {
	op, target := b.target()
	t, err := s.eng.CheckTarget(op, target)
	if err != nil {
		return fromSession(err)
	}
	if !c.MayTarget(t.Number) {
		he := forbidden(fmt.Sprintf("client %q may not transfer or forward to %q (its targets: %s)",
			c.Name, t.Raw, strings.Join(c.Targets(), ", ")))
		he.body.Field = "target"
		return he
	}
	return nil
}

type dtmfBody struct {
	Key   string `json:"key"`
	Keys  string `json:"keys"`
	Party string `json:"party"`
}

// Handler is the API's http.Handler: every route with its metrics, panics
// recovered, and the security headers on every answer.
func (s *Server) Handler() http.Handler {
	return securityHeaders(recoverPanics(s.log, &s.panics, s.metrics.wrap(s.mux)))
}

// Start begins feeding the event stream; Close stops it and every stream.
func (s *Server) Start() { s.hub.start() }

// Close ends every event stream and waits for the hub.
func (s *Server) Close() { s.hub.close() }

// Routes returns every API route as "METHOD /path".
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// authedFunc is a handler for an authenticated, authorised client.
type authedFunc func(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError

func sourceAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// authenticate returns the request's client or the 401/429 to send.
func (s *Server) authenticate(r *http.Request) (*auth.Client, *httpError) {
	c, err := s.opts.Auth.Authenticate(auth.TokenFromRequest(r), sourceAddr(r))
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, auth.ErrRateLimited):
		return nil, &httpError{http.StatusTooManyRequests, apiError{Code: "rate_limited", Message: "too many failed authentications from this address; wait a minute"}}
	case errors.Is(err, auth.ErrNoToken):
		return nil, unauthenticated("no token: send Authorization: Bearer <token>")
	default:
		return nil, unauthenticated("token not recognised")
	}
}

// handle registers an authenticated route; priv "" means any client.
func (s *Server) handle(pattern string, priv auth.Privilege, h authedFunc) {
	s.routes = append(s.routes, pattern)
	op := opFromPattern(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, he := s.authenticate(r)
		if he != nil {
			if he.status == http.StatusTooManyRequests || r.URL.Path != "/metrics" {
				s.log.Warn("security: API request refused", zap.String("path", r.URL.Path), zap.String("source", r.RemoteAddr), zap.String("why", he.body.Message))
			}
			writeError(w, he)
			return
		}
		if priv != "" && !c.Can(priv) {
			he := forbidden(fmt.Sprintf("client %q lacks the privilege %s", c.Name, priv))
			if id := r.PathValue("id"); id != "" {
				s.audit(r, c, op, nil, id, he)
			}
			writeError(w, he)
			return
		}
		if he := h(w, r, c); he != nil {
			writeError(w, he)
		}
	})
}

// opFromPattern names a route's operation for the audit trail: the last
// literal path segment ("hold", "transfer"), "view" for a session read,
// "stopListen" for the listen id route.
func opFromPattern(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	last := path[strings.LastIndex(path, "/")+1:]
	switch last {
	case "{id}":
		return "view"
	case "{listenId}":
		return "stopListen"
	}
	return last
}

// op registers POST /api/v1/sessions/{id}/<name>.
func (s *Server) op(name string, priv auth.Privilege, newBody func() any, run func(ctx context.Context, id string, body any) error) {
	s.handle("POST /api/v1/sessions/{id}/"+name, priv, func(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
		id := r.PathValue("id")
		if _, he := s.visible(c, id); he != nil {
			s.audit(r, c, name, nil, id, he)
			return he
		}
		var body any
		var args map[string]string
		if newBody != nil {
			body = newBody()
			if he := decodeBody(r, body); he != nil {
				s.audit(r, c, name, nil, id, he)
				return he
			}
			args = argsOf(body)
		} else if he := decodeBody(r, &struct{}{}); he != nil {
			s.audit(r, c, name, nil, id, he)
			return he
		}
		if tb, ok := body.(targeted); ok {
			if he := s.checkTarget(c, tb); he != nil {
				s.metrics.operation(name, false)
				s.audit(r, c, name, args, id, he)
				return he
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
		defer cancel()
		err := run(ctx, id, body)
		var he *httpError
		if err != nil {
			he = fromSession(err)
		}
		s.metrics.operation(name, err == nil)
		s.audit(r, c, name, args, id, he)
		if he != nil {
			return he
		}
		snap, ok := s.reg.GetAny(id)
		if !ok {
			snap, _ = s.reg.Released(id) // close released it
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "session": view(snap, time.Now())})
		return nil
	})
}

func argsOf(body any) map[string]string {
	switch b := body.(type) {
	case *transferBody:
		return map[string]string{"transferor": b.Transferor, "target": b.Target}
	case *forwardBody:
		return map[string]string{"target": b.Target}
	case *dtmfBody:
		m := map[string]string{"party": b.Party}
		if b.Keys != "" {
			m["keys"] = b.Keys
		} else {
			m["key"] = b.Key
		}
		return m
	}
	return nil
}

// audit writes the request to the audit trail before the response goes out.
func (s *Server) audit(r *http.Request, c *auth.Client, op string, args map[string]string, id string, he *httpError) {
	if s.opts.Audit == nil {
		return
	}
	rec := audit.Request{Time: time.Now(), Client: c.Name, Source: r.RemoteAddr, Operation: op, Args: args,
		SessionID: id, Result: "ok", Status: http.StatusOK}
	if he != nil {
		rec.Result, rec.Status, rec.Error = "error", he.status, he.body.Message
	}
	// The operation has happened whether or not the client is still there:
	// its record must be written even if the client hung up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if _, err := s.opts.Audit.RecordRequest(ctx, rec); err != nil {
		s.log.Error("audit trail write failed", zap.String("operation", op), zap.String("session", id), zap.Error(err))
	}
}

// visible returns a session the client may see; others are 404 alike.
func (s *Server) visible(c *auth.Client, id string) (session.Snapshot, *httpError) {
	snap, ok := s.reg.GetAny(id)
	if !ok || !c.InScope(snap.Caller.Number, snap.Callee.Number) {
		return session.Snapshot{}, notFound(fmt.Sprintf("no session %q", id))
	}
	return snap, nil
}

// SessionView is a session as the API shows it: the snapshot plus the
// durations at the time of the answer.
type SessionView struct {
	session.Snapshot
	TalkDuration  float64 `json:"talkDuration"`  // seconds since answer (to end)
	StateDuration float64 `json:"stateDuration"` // seconds in the current state
}

func view(s session.Snapshot, now time.Time) SessionView {
	v := SessionView{Snapshot: s}
	end := now
	if !s.End.IsZero() {
		end = s.End
	}
	if !s.Answer.IsZero() {
		v.TalkDuration = end.Sub(s.Answer).Seconds()
	}
	v.StateDuration = end.Sub(s.StateSince).Seconds()
	return v
}

// getMe tells a client who it is and what it may do (the console shows only
// the controls a client can use).
func (s *Server) getMe(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	privs := c.Privileges()
	out := make([]string, len(privs))
	for i, p := range privs {
		out[i] = string(p)
	}
	scope := c.Scope()
	if scope == nil {
		scope = []string{}
	}
	targets := c.Targets()
	if targets == nil {
		targets = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": c.Name, "privileges": out, "scope": scope, "targets": targets})
	return nil
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	q := r.URL.Query()
	state := session.State(q.Get("state"))
	if state != "" && !state.Valid() {
		all := make([]string, len(session.AllStates))
		for i, st := range session.AllStates {
			all[i] = string(st)
		}
		return badRequest(fmt.Sprintf("state %q is not a state (allowed: %s)", state, strings.Join(all, ", ")))
	}
	number := q.Get("number")
	now := time.Now()
	out := []SessionView{}
	for _, snap := range s.reg.ListAll() {
		if !c.InScope(snap.Caller.Number, snap.Callee.Number) {
			continue
		}
		if state != "" && snap.State != state {
			continue
		}
		if number != "" && snap.Caller.Number != number && snap.Callee.Number != number && snap.Dialled != number {
			continue
		}
		out = append(out, view(snap, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	snap, he := s.visible(c, r.PathValue("id"))
	if he != nil {
		return he
	}
	writeJSON(w, http.StatusOK, view(snap, time.Now()))
	return nil
}

// listenBody is the browser's offer: an RTCSessionDescriptionInit, as
// JSON.stringify(pc.localDescription) writes it ({"type": "offer", "sdp":
// …}), or just {"sdp": …}.
type listenBody struct {
	Type *string `json:"type,omitempty"`
	SDP  string  `json:"sdp"`
}

// startListen takes the browser's WebRTC offer and answers it: two
// receive-only tracks, caller and callee.
func (s *Server) startListen(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	id := r.PathValue("id")
	if _, he := s.visible(c, id); he != nil {
		s.audit(r, c, "listen", nil, id, he)
		return he
	}
	var body listenBody
	he := decodeBody(r, &body)
	if he == nil && body.Type != nil && *body.Type != "offer" {
		he = badRequest(fmt.Sprintf("type %q is not a description callctl answers (allowed: offer, or no type)", *body.Type))
		he.body.Field = "type"
	}
	if he != nil {
		s.audit(r, c, "listen", nil, id, he)
		return he
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	listenID, answer, err := s.eng.Listen(ctx, id, c.Name, body.SDP)
	if err != nil {
		he = fromSession(err)
	}
	s.metrics.operation("listen", err == nil)
	s.audit(r, c, "listen", map[string]string{"listenId": listenID}, id, he)
	if he != nil {
		return he
	}
	writeJSON(w, http.StatusOK, map[string]string{"listenId": listenID, "sdp": answer})
	return nil
}

func (s *Server) stopListen(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	id, listenID := r.PathValue("id"), r.PathValue("listenId")
	args := map[string]string{"listenId": listenID}
	if _, he := s.visible(c, id); he != nil {
		s.audit(r, c, "stopListen", args, id, he)
		return he
	}
	err := s.eng.StopListen(r.Context(), id, listenID)
	var he *httpError
	if err != nil {
		he = fromSession(err)
	}
	s.metrics.operation("stopListen", err == nil)
	s.audit(r, c, "stopListen", args, id, he)
	if he != nil {
		return he
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

// filter reads the audit/calls query parameters.
func filter(r *http.Request) (audit.Filter, *httpError) {
	q := r.URL.Query()
	f := audit.Filter{SessionID: q.Get("session"), Client: q.Get("client"), Operation: q.Get("operation")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, badRequest(fmt.Sprintf("%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", p.name, v))
			}
			*p.dst = t
		}
	}
	for _, p := range []struct {
		name string
		dst  any
	}{{"limit", &f.Limit}, {"before", &f.BeforeID}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return f, badRequest(fmt.Sprintf("%s %q must be a whole number ≥ 0", p.name, v))
			}
			switch d := p.dst.(type) {
			case *int:
				*d = int(n)
			case *int64:
				*d = n
			}
		}
	}
	return f, nil
}
