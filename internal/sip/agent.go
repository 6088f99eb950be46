package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/flood"
	"github.com/callctl/callctl/internal/logging"
)

// Credentials answer a digest challenge (401/407) from the peer callctl sends
// INVITEs to.
type Credentials struct {
	Username string
	Password string
}

// Config is what the Agent needs to know; internal/app fills it from the
// user's configuration.
type Config struct {
	// Listen is the host:port bound on every transport.
	Listen string
	// Transports to listen on: "udp", "tcp".
	Transports []string
	// Advertise is the host put in Via and Contact; empty means Listen's host.
	Advertise string
	// Allow lists the source networks whose requests are served.
	Allow []netip.Prefix
	// UserAgent is sent in User-Agent and Server headers.
	UserAgent string
	// Credentials, when Username is set, answer 401/407 challenges.
	Credentials Credentials
	// Accepting, when set and false, makes OPTIONS answer 503 (callctl is
	// draining), so a load balancer's probes stop sending new calls here.
	Accepting func() bool
	// RetryAfter is the Retry-After of that 503, in seconds.
	RetryAfter int
	// Flood limits the requests each source may send (a rate, a burst and
	// a block for sources that keep exceeding it); a zero Rate is no limit.
	Flood flood.Config
	// RefuseWith403 answers requests from sources outside Allow with one
	// stateless 403; by default they are dropped without an answer.
	RefuseWith403 bool
	// Scanners are User-Agent substrings (matched case-insensitively) of
	// scanners whose requests are dropped unanswered.
	Scanners []string
	// SummaryInterval is how often refused, shed and unparsable traffic is
	// summarised in the log (default 10 s).
	SummaryInterval time.Duration
	// SessionTimer is the session interval callctl asks for and uses where
	// it is the refresher (RFC 4028), whole seconds; 0 means callctl starts
	// no session timer itself (it still honours a peer's).
	SessionTimer time.Duration
	// MinSE is the smallest session interval callctl accepts (Min-SE,
	// at least and by default 90 s).
	MinSE time.Duration
	// TimerUnit, for tests only, is how long one second of Session-Expires
	// and Min-SE lasts on the leg's clocks; 0 means a second.
	TimerUnit time.Duration
	// LargeOver is how requests too large for UDP travel to hosts not in
	// Peers: LargeOverTCP (the default) or LargeOverUDP (transport.go).
	LargeOver string
	// Peers are per-host LargeOver policies (the trunk's, the routes').
	Peers []PeerPolicy
	// TLS is the SIP-over-TLS listener and the verification of TLS peers
	// (tls.go); a zero value listens on no TLS port.
	TLS TLSConfig
}

// InviteHandler receives each new dialog-creating INVITE from an allowed,
// non-looping source as an Inbound leg. It runs on the SIP layer's goroutine
// and must return quickly: it should set the leg's sink and hand the leg to
// its owner. The agent keeps the INVITE transaction open until the owner sends
// a final response or the caller cancels.
type InviteHandler func(in *Leg)

// Agent is callctl's SIP user agent: one listener per transport, one client,
// and the table of live dialogs.
type Agent struct {
	cfg       Config
	log       *zap.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	host      string
	port      int
	udpLocal  gosip.Addr
	udpKey    string // the UDP listener's key in sipgo's connection pool
	onInvite  InviteHandler
	listeners []func() error
	closeFns  []func()
	udpConn   net.PacketConn // the UDP listener, for stateless answers

	limiter *flood.Limiter
	// policy is whom the agent accepts and how it sends large requests,
	// swapped whole by SetPolicy (reload.go).
	policy   atomic.Pointer[policyState]
	streams  streamBuffers    // partial messages of TCP connections (framer.go)
	summary  *logging.Summary // refused, shed and unparsable traffic
	answered *answered        // ended transactions' retransmissions (recent.go)

	// closing is set first thing in Close: from then on nothing read from
	// the network is handed to sipgo's transaction layer.
	closing atomic.Bool
	// life is cancelled by Close: connection setups in progress
	// (transport.go, connectContext) give up at once.
	life     context.Context
	lifeDone context.CancelFunc

	mu       sync.Mutex
	dialogs  map[string]*Leg // Call-ID + local tag → leg
	outCalls map[string]*Leg // Call-IDs callctl created, for loop detection
	closed   bool

	// wg tracks every goroutine the agent or its legs start.
	wg sync.WaitGroup

	// responses counts SIP responses by direction (0 sent, 1 received) and
	// status code, for metrics.
	responses [2][700]atomic.Uint64
	// refused counts requests refused because their source is not on the
	// allow-list (ACKs included, though they get no answer).
	refused atomic.Uint64
	// dropped counts messages dropped unanswered, by reason (intake.go).
	dropped [numDropReasons]atomic.Uint64
	// panics counts handler panics recovered (guard).
	panics atomic.Uint64
	// sendFailed counts messages that could not be sent, by reason, and
	// largeSent requests over 1,300 bytes sent over TCP (0) or as large
	// UDP datagrams (1) (transport.go).
	sendFailed [numFailReasons]atomic.Uint64
	largeSent  [2]atomic.Uint64
	// tlsPort is the TLS listener's port (0: none); certs its certificate.
	tlsPort int
	certs   *certStore
	// tagHook, set by tests only, makes local tags predictable.
	tagHook func() string
}

// newTag makes the local tag of a dialog callctl answers (RFC 3261 19.3:
// at least 32 bits of randomness). Tests may replace it to reach dialogs.
func (a *Agent) newTag() string {
	if a.tagHook != nil {
		return a.tagHook()
	}
	return gosip.GenerateTagN(16)
}

// Refused returns how many requests came from sources not on sip.allow.
func (a *Agent) Refused() uint64 { return a.refused.Load() }

// countSent and countReceived tally a response's status code.
func (a *Agent) countSent(code int) {
	if code >= 100 && code < 700 {
		a.responses[0][code].Add(1)
	}
}

func (a *Agent) countReceived(code int) {
	if code >= 100 && code < 700 {
		a.responses[1][code].Add(1)
	}
}

// Stats returns the non-zero response counters as "sent:486" → n and
// "received:200" → n.
func (a *Agent) Stats() map[string]uint64 {
	out := map[string]uint64{}
	for dir, name := range []string{"sent", "received"} {
		for code := 100; code < 700; code++ {
			if n := a.responses[dir][code].Load(); n > 0 {
				out[name+":"+strconv.Itoa(code)] = n
			}
		}
	}
	return out
}

// ErrClosed is returned by Dial after Close.
var ErrClosed = errors.New("sip: agent closed")

// NewAgent binds the listeners (so a bad address fails here, not later) and
// installs the request handlers. Call Serve to start reading.
func NewAgent(cfg Config, log *zap.Logger, onInvite InviteHandler) (*Agent, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("sip.listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("sip.listen %q: bad port", cfg.Listen)
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports = []string{"udp"}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "callctl"
	}
	setSipgoFallbackLogger()
	summary := logging.NewSummary(log, "security: SIP traffic shed", cfg.SummaryInterval, 20)
	slogger := slog.New(zapSlogHandler{log: log.Named("sipgo"), summary: summary})

	a := &Agent{
		cfg:      cfg,
		log:      log,
		onInvite: onInvite,
		dialogs:  make(map[string]*Leg),
		outCalls: make(map[string]*Leg),
		limiter:  flood.New(cfg.Flood),
		summary:  summary,
		answered: newAnswered(),
	}
	a.life, a.lifeDone = context.WithCancel(context.Background())
	a.SetPolicy(Policy{Allow: cfg.Allow, RefuseWith403: cfg.RefuseWith403, Scanners: cfg.Scanners, Flood: cfg.Flood, Peers: cfg.Peers})

	// Bind every transport on the same port; with port 0 the first bind
	// picks it and the others follow.
	var udpConn net.PacketConn
	var tcpLn net.Listener
	for _, tp := range cfg.Transports {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		switch strings.ToLower(tp) {
		case "udp":
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				a.closeListeners(udpConn, tcpLn)
				return nil, fmt.Errorf("sip.listen udp %s: %w", addr, err)
			}
			udpConn = c
			port = c.LocalAddr().(*net.UDPAddr).Port
			if uc, ok := c.(*net.UDPConn); ok {
				rcv, snd := setUDPBuffers(uc, sipUDPBuffer)
				log.Debug("sip: UDP socket buffers", zap.String("addr", c.LocalAddr().String()),
					zap.Int("requested", sipUDPBuffer), zap.Int("receive", rcv), zap.Int("send", snd))
			}
		case "tcp":
			l, err := net.Listen("tcp", addr)
			if err != nil {
				a.closeListeners(udpConn, tcpLn)
				return nil, fmt.Errorf("sip.listen tcp %s: %w", addr, err)
			}
			tcpLn = l
			port = l.Addr().(*net.TCPAddr).Port
		default:
			a.closeListeners(udpConn, tcpLn)
			return nil, fmt.Errorf("sip.transports: %q is not one of udp, tcp", tp)
		}
	}
	a.host = cfg.Advertise
	if a.host == "" {
		a.host = host
	}
	a.port = port

	certs, serverTLS, clientTLS, err := newTLS(cfg.TLS)
	if err != nil {
		a.closeListeners(udpConn, tcpLn)
		return nil, err
	}
	a.certs = certs
	var tlsLn net.Listener
	if cfg.TLS.Listen != "" {
		if tlsLn, err = listenTLS(cfg.TLS.Listen, serverTLS); err != nil {
			a.closeListeners(udpConn, tcpLn)
			return nil, err
		}
		a.tlsPort = tlsLn.Addr().(*net.TCPAddr).Port
	}

	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgentHostname(a.host), sipgo.WithUserAgentParser(parser),
		sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgentTransactionLayerOptions(gosip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(gosip.WithTransportLayerLogger(slogger),
			gosip.WithTransportLayerReadFilter(a.intake)))
	if err != nil {
		a.closeListeners(udpConn, tcpLn, tlsLn)
		return nil, err
	}
	a.ua = ua
	if a.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(slogger)); err != nil {
		a.closeListeners(udpConn, tcpLn, tlsLn)
		return nil, err
	}
	if a.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(a.host), sipgo.WithClientPort(port), sipgo.WithClientLogger(slogger)); err != nil {
		a.closeListeners(udpConn, tcpLn, tlsLn)
		return nil, err
	}
	if udpConn != nil {
		ua := udpConn.LocalAddr().(*net.UDPAddr)
		a.udpLocal = gosip.Addr{IP: ua.IP, Port: ua.Port}
		a.udpKey = udpConn.LocalAddr().String()
		a.udpConn = udpConn
		a.listeners = append(a.listeners, func() error { return a.srv.ServeUDP(udpConn) })
	}
	if tcpLn != nil {
		a.listeners = append(a.listeners, func() error { return a.srv.ServeTCP(tcpLn) })
	}
	if tlsLn != nil {
		a.listeners = append(a.listeners, func() error { return a.srv.ServeTLS(tlsLn) })
	}
	a.closeFns = append(a.closeFns, func() {
		a.closeListeners(udpConn, tcpLn, tlsLn)
	})

	a.srv.OnInvite(a.guard(a.handleInvite))
	a.srv.OnAck(a.guard(a.handleAck))
	a.srv.OnBye(a.guard(a.handleInDialog))
	a.srv.OnCancel(a.guard(a.handleStrayCancel))
	a.srv.OnOptions(a.guard(a.handleOptions))
	for _, m := range []gosip.RequestMethod{gosip.INFO, gosip.UPDATE, gosip.REFER, gosip.NOTIFY, gosip.MESSAGE, gosip.PRACK, gosip.SUBSCRIBE} {
		a.srv.OnRequest(m, a.guard(a.handleInDialog))
	}
	a.srv.OnNoRoute(a.guard(a.handleUnsupported))
	return a, nil
}

func (a *Agent) closeListeners(c net.PacketConn, ls ...net.Listener) {
	if c != nil {
		c.Close()
	}
	for _, l := range ls {
		if l != nil {
			l.Close()
		}
	}
}

// Addr returns the host:port callctl listens on.
func (a *Agent) Addr() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// Serve starts reading from every listener; Close stops it.
func (a *Agent) Serve() {
	for _, serve := range a.listeners {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
				a.log.Debug("sip listener stopped", zap.Error(err))
			}
		}()
	}
	a.awaitUDPListener()
}

// awaitUDPListener returns once sipgo has registered the UDP listener in its
// connection pool. Until then a request sent from the listener's address
// would make sipgo try to open a second socket on the same port and fail, so
// a Dial right after Serve must not race the serving goroutine.
func (a *Agent) awaitUDPListener() {
	if a.udpKey == "" {
		return
	}
	pool := a.ua.TransportLayer().Pool("udp")
	for range 1000 {
		if pool.Get(a.udpKey) != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	a.log.Warn("sip: UDP listener not registered after 1s", zap.String("addr", a.udpKey))
}

// Close stops the listeners and the transaction layer. Live legs get no more
// events. It waits for every goroutine the agent started.
func (a *Agent) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	a.mu.Unlock()
	// Order matters (sipgo v1.7.3): a message read before Close is handled
	// on a goroutine of sipgo's, and if its transaction and pooled socket
	// are gone it opens a new socket on our port to answer, which nothing
	// would ever close. So: stop taking messages in, end the transactions
	// and pool while the listeners still hold the port (a late answer then
	// fails to bind instead of leaking), and only then close the listeners.
	a.closing.Store(true)
	a.lifeDone()
	a.ua.Close()
	for _, f := range a.closeFns {
		f()
	}
	a.summary.Close()
}

// Wait blocks until every goroutine started by the agent has returned. Call
// it after Close.
func (a *Agent) Wait() { a.wg.Wait() }

// go runs f on a goroutine the agent owns (Wait waits for it).
func (a *Agent) goOwned(f func()) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return false
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer a.recoverOwned()
		f()
	}()
	return true
}

func callIDField(req *gosip.Request) zap.Field {
	if h := req.CallID(); h != nil {
		return zap.String("call_id", h.Value())
	}
	return zap.Skip()
}

// allowMethods are the methods callctl handles, sent in Allow (RFC 3261
// 20.5): add a method here once it is really handled.
var allowMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER", "NOTIFY", "PRACK", "UPDATE"}

var allowHeader = strings.Join(allowMethods, ", ")

// noBuild is a ClientRequestOption that leaves a request exactly as built:
// legs build their own headers (RFC 3261 12.2.1.1).
func noBuild(*sipgo.Client, *gosip.Request) error { return nil }

// T1 and friends, re-exported for the timers legs run (RFC 3261 17.1.1.1).
var (
	t1 = func() time.Duration { return gosip.T1 }
	t2 = func() time.Duration { return gosip.T2 }
)

// Host is the host callctl puts in Via, Contact and its own URIs.
func (a *Agent) Host() string { return a.host }
