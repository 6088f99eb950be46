package session

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callctl/callctl/internal/listen"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/policy"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Route sends dialled numbers matching Match to Target ("{number}" in it is
// replaced by the number).
type Route struct {
	Match     *regexp.Regexp
	Target    string
	Transport string
	// SRTP is what to offer this route's B legs; nil means the trunk's.
	SRTP *SRTPOffer
}

// Config is what the Engine needs; internal/app fills it from the user's
// configuration.
type Config struct {
	// Trunk is the PBX host:port and transport B legs go to by default.
	TrunkAddress   string
	TrunkTransport string
	Routes         []Route
	// TransferHosts are the hosts a SIP URI transfer or forward target may
	// name; empty means the trunk's host and the route targets' hosts
	// (policy.DefaultHosts).
	TransferHosts []string
	// MaxSessions above which new INVITEs get 503 with RetryAfter.
	MaxSessions int
	// MaxPerSource, when not 0, bounds the live calls of one source
	// address the same way.
	MaxPerSource int
	RetryAfter   time.Duration
	// RingTimeout ends an unanswered B leg (480 to the caller).
	RingTimeout time.Duration
	// MediaTimeout ends a call when a party that is supposed to send RTP
	// sent none for that long; HoldTimeout when a party that is not (held)
	// sent neither RTP nor RTCP for that long (0: off). See liveness.go.
	MediaTimeout time.Duration
	HoldTimeout  time.Duration
	// TrunkSRTP is what callctl offers B legs to the trunk (srtp.go);
	// SRTPInbound which callers it takes; SRTPSuites the SDES crypto-suites
	// it accepts and offers, in order (empty: all it supports).
	TrunkSRTP   SRTPOffer
	SRTPInbound SRTPInbound
	SRTPSuites  []media.SRTPSuite
	// MediaLatching says which sources a leg takes its party's media from.
	MediaLatching media.Latching
	// MediaIP is where relay sockets bind; MediaAdvertise goes in SDP.
	MediaIP        netip.Addr
	MediaAdvertise netip.Addr
	// HoldInactive makes a client's hold offer a=inactive instead of sendonly.
	HoldInactive bool
	// Music is played to held parties; nil means media.DefaultMusic().
	Music *media.Music
	// TransferTimeout bounds the wait for a transfer's final NOTIFY;
	// TransferGrace is how long the transferee's side may take to end the
	// old dialog after success; TransferFallback lets callctl connect the
	// target itself when REFER is refused.
	TransferTimeout  time.Duration
	TransferGrace    time.Duration
	TransferFallback bool
	// PartyRefer is what a party's REFER gets (calls.party_refer,
	// party_refer.go): PartyReferPerform (also ""), PartyReferRelay or
	// PartyReferRefuse.
	PartyRefer string
	// DTMFDuration and DTMFGap shape the digits callctl sends.
	DTMFDuration time.Duration
	DTMFGap      time.Duration
	// OnEnd, when set, is called on the session's goroutine when a session
	// has ended, with the operations applied to it ("hold ok", …); an
	// operation that ended the call is included, and its caller is answered
	// only after OnEnd returned (so a call record is stored before the API
	// answers). It may be called more than once for a session (e.g. HUNG_UP,
	// then CLOSED); the last call has the final state.
	OnEnd func(snap Snapshot, operations []string)
	// Listen runs listen-in; nil disables it.
	Listen *listen.Manager
	// Keeper keeps answered calls' records so that they outlive the
	// process (record.go); nil keeps nothing. Node is this node's name,
	// the owner written into each record.
	Keeper Keeper
	Node   string
	// Forwarder runs operations on sessions other nodes own; nil: such a
	// session is unknown here.
	Forwarder Forwarder
}

// Engine turns inbound INVITEs into Sessions and runs them.
type Engine struct {
	cfg   Config
	log   *zap.Logger
	ports *media.PortPool
	reg   *Registry
	agent *sip.Agent
	music *media.Music
	// routing is the routes and transfer policy for what starts now,
	// swapped whole by Reload (reload.go).
	routing atomic.Pointer[routing]

	admission *admission
	draining  atomic.Bool
	recovered atomic.Uint64 // calls re-adopted from the store (recover.go)
	wg        sync.WaitGroup
}

// NewEngine makes an engine; call SetAgent before traffic arrives.
func NewEngine(cfg Config, log *zap.Logger, ports *media.PortPool, reg *Registry) *Engine {
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = 30 * time.Second
	}
	if cfg.DTMFDuration <= 0 {
		cfg.DTMFDuration = 100 * time.Millisecond
	}
	if cfg.DTMFGap <= 0 {
		cfg.DTMFGap = 100 * time.Millisecond
	}
	music := cfg.Music
	if music == nil {
		music = media.DefaultMusic()
	}
	e := &Engine{cfg: cfg, log: log, ports: ports, reg: reg, music: music,
		admission: newAdmission(cfg.MaxSessions, cfg.MaxPerSource)}
	e.routing.Store(newRouting(cfg.TrunkAddress, cfg.Routes, cfg.TransferHosts))
	return e
}

// Targets is the transfer and forward target policy the engine enforces.
func (e *Engine) Targets() *policy.Targets { return e.routing.Load().targets }

// SetAgent gives the engine the SIP agent it dials through. (The agent is
// made with the engine's HandleInvite, hence the two steps.)
func (e *Engine) SetAgent(a *sip.Agent) { e.agent = a }

// Registry returns the engine's session registry.
func (e *Engine) Registry() *Registry { return e.reg }

// Drain makes the engine refuse new calls with 503 from now on.
func (e *Engine) Drain() { e.draining.Store(true) }

// AbortAll ends every live session with ABORTED.
func (e *Engine) AbortAll(reason string) {
	for _, s := range e.reg.liveSessions() {
		s.post(abortCmd{reason: reason})
	}
}

// Wait blocks until every session goroutine has returned.
func (e *Engine) Wait() { e.wg.Wait() }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *Engine) retryAfter() gosip.Header {
	return gosip.NewHeader("Retry-After", fmt.Sprint(int(e.cfg.RetryAfter.Seconds())))
}

// HandleInvite is the sip.InviteHandler: admission, offer check, then a new
// Session that owns the call from here on.
func (e *Engine) HandleInvite(in *sip.Leg) {
	req := in.Invite()
	log := e.log.WithLazy(zap.String("call_id", in.CallID()))
	if e.draining.Load() {
		in.Respond(503, "Service Unavailable", nil, e.retryAfter())
		return
	}
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		src = ap.Addr().Unmap()
	}
	result, release := e.admission.admit(src)
	switch result {
	case atMaxSessions:
		log.Debug("refusing call: sessions at calls.max_sessions")
		in.Respond(503, "Service Unavailable", nil, e.retryAfter(), warning("callctl is at calls.max_sessions"))
		return
	case atMaxPerSource:
		log.Debug("refusing call: source at calls.max_per_source", zap.String("source", src.String()))
		in.Respond(503, "Service Unavailable", nil, e.retryAfter(), warning("this source is at calls.max_per_source"))
		return
	}
	started := false
	defer func() {
		if !started {
			release()
		}
	}()
	// An INVITE without SDP is a delayed offer (RFC 3264 §4): the B leg
	// goes out offerless too, and the offer comes back in its 2xx.
	var info media.MediaInfo
	var parsed *media.ParsedSDP
	if offer := req.Body(); len(offer) > 0 {
		var err error
		if info, parsed, err = media.ParseSDPKeep(offer); err != nil {
			log.Warn("refusing INVITE with bad SDP", zap.Error(err))
			in.Respond(488, "Not Acceptable Here", nil, warning("bad SDP: "+err.Error()))
			return
		}
	}
	s := newSession(e, in, info, parsed)
	started = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer release()
		s.run()
	}()
}

// warning makes an RFC 3261 20.43 Warning header (399: miscellaneous).
func warning(text string) gosip.Header {
	text = strings.ReplaceAll(text, `"`, `'`)
	return gosip.NewHeader("Warning", `399 callctl "`+text+`"`)
}

// target returns the B-leg URI and transport for a dialled number, by the
// routes in force now.
func (e *Engine) target(number string) (gosip.Uri, string, error) {
	return e.targetBy(e.routing.Load(), number)
}

// targetBy is target by the routes of rt (a call's set-up takes its
// routes once, so a reload in the middle cannot mix two tables).
func (e *Engine) targetBy(rt *routing, number string) (gosip.Uri, string, error) {
	if rt == nil {
		rt = e.routing.Load()
	}
	var u gosip.Uri
	for _, r := range rt.routes {
		if r.Match.MatchString(number) {
			s := strings.ReplaceAll(r.Target, "{number}", number)
			if err := gosip.ParseUri(s, &u); err != nil {
				return u, "", fmt.Errorf("route target %q: %w", s, err)
			}
			tp := r.Transport
			if tp == "" {
				tp = e.cfg.TrunkTransport
			}
			return u, tp, nil
		}
	}
	s := "sip:" + number + "@" + e.cfg.TrunkAddress
	if err := gosip.ParseUri(s, &u); err != nil {
		return u, "", fmt.Errorf("trunk target %q: %w", s, err)
	}
	return u, e.cfg.TrunkTransport, nil
}

// endpointConfig is how every relay endpoint of a call is opened.
func (e *Engine) endpointConfig(log *zap.Logger) media.EndpointConfig {
	return media.EndpointConfig{IP: e.cfg.MediaIP, Advertise: e.cfg.MediaAdvertise, Latching: e.cfg.MediaLatching, Log: log}
}

// Draining reports whether the engine refuses new calls (shutting down).
func (e *Engine) Draining() bool { return e.draining.Load() }
