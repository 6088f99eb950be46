package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/api"
	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/auth"

	"github.com/callctl/callctl/internal/cluster"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/flood"
	"github.com/callctl/callctl/internal/listen"
	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/internal/sip"
	"github.com/callctl/callctl/internal/store"
	"go.uber.org/zap"
)

// App is one running callctl.
type App struct {
	cfg    config.Config
	log    *zap.Logger
	agent  *sip.Agent
	engine *session.Engine
	reg    *session.Registry
	ports  *media.PortPool

	listen  *listen.Manager
	calls   *store.Store     // the live-call store, nil when cluster.store is off
	writer  *store.Writer    // its record writer
	adopt   func()           // starts the calls re-adopted from the store (Run)
	cluster *cluster.Cluster // heartbeats, claims and handoffs; nil without a store
	auth    *auth.Authenticator
	store   *audit.Store
	api     *api.Server
	apiLn   net.Listener
	apiURL  string

	reload reloader // reload.go
}

// Options are the parts of a run that are not configuration.
type Options struct {
	// Web is served at / by the API (the SDK, the console); nil: nothing.
	Web fs.FS
	// Out receives the one-time admin token notice; nil means os.Stderr.
	Out io.Writer
	// Load re-builds the effective configuration as it was built for New
	// (the same file, environment and flags), for Reload; nil means a
	// reload only re-reads the SIP TLS certificate.
	Load func() (config.Config, error)
}

// New checks cfg and binds callctl's SIP sockets; nothing is served until Run.
func New(cfg config.Config, log *zap.Logger) (*App, error) {
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions is New with the non-configuration parts of a run.
func NewWithOptions(cfg config.Config, log *zap.Logger, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allow, err := prefixes(cfg.SIP.Allow)
	if err != nil {
		return nil, err
	}
	lo, hi, err := media.ParsePortRange(cfg.Media.RTPPorts)
	if err != nil {
		return nil, err
	}
	ports, err := media.NewPortPool(lo, hi, cfg.Media.PortRest)
	if err != nil {
		return nil, fmt.Errorf("media.rtp_ports: %w", err)
	}
	mediaIP, err := netip.ParseAddr(cfg.Media.IP)
	if err != nil {
		return nil, fmt.Errorf("media.ip %q: %w", cfg.Media.IP, err)
	}
	var advertise netip.Addr
	if cfg.Media.Advertise != "" {
		if advertise, err = netip.ParseAddr(cfg.Media.Advertise); err != nil {
			return nil, fmt.Errorf("media.advertise %q: %w", cfg.Media.Advertise, err)
		}
	}
	latching, err := media.ParseLatching(cfg.Media.Latching)
	if err != nil {
		return nil, err
	}
	routes, err := compileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	srtpCfg, err := srtpConfig(cfg, routes)
	if err != nil {
		return nil, err
	}
	var music *media.Music
	if cfg.Calls.MusicOnHold != "" {
		if music, err = media.LoadMusic(cfg.Calls.MusicOnHold); err != nil {
			return nil, fmt.Errorf("calls.music_on_hold: %w", err)
		}
	}
	a := &App{cfg: cfg, log: log}
	if a.calls, err = openStore(cfg, log); err != nil {
		return nil, err
	}
	var keeper session.Keeper
	if a.calls != nil {
		// A record changed under this node: another claimed the call.
		a.writer = a.calls.NewWriter(func(key string) { a.engine.Release(key, "another node") })
		keeper = a.writer
	}
	a.reload.load, a.reload.current = opts.Load, cfg
	lm, err := newListenManager(cfg, log)
	if err != nil {
		a.closeStore()
		return nil, err
	}
	a.listen = lm
	reg := session.NewRegistry(cfg.Calls.EndedRetention)
	engine := session.NewEngine(session.Config{
		TrunkAddress:     cfg.Trunk.Address,
		TrunkTransport:   cfg.Trunk.Transport,
		Routes:           routes,
		TransferHosts:    cfg.Calls.TransferHosts,
		MaxSessions:      cfg.Calls.MaxSessions,
		MaxPerSource:     cfg.Calls.MaxPerSource,
		RetryAfter:       cfg.Calls.RetryAfter,
		RingTimeout:      cfg.Calls.RingTimeout,
		MediaTimeout:     cfg.Media.Timeout,
		HoldTimeout:      cfg.Media.HoldTimeout,
		MediaLatching:    latching,
		TrunkSRTP:        srtpCfg.TrunkSRTP,
		SRTPInbound:      srtpCfg.SRTPInbound,
		SRTPSuites:       srtpCfg.SRTPSuites,
		MediaIP:          mediaIP,
		MediaAdvertise:   advertise,
		HoldInactive:     cfg.Calls.HoldDirection == "inactive",
		Music:            music,
		TransferTimeout:  cfg.Calls.TransferTimeout,
		TransferGrace:    cfg.Calls.TransferGrace,
		TransferFallback: cfg.Calls.TransferFallback,
		PartyRefer:       cfg.Calls.PartyRefer,
		DTMFDuration:     cfg.Calls.DTMFDuration,
		DTMFGap:          cfg.Calls.DTMFGap,
		OnEnd:            a.recordCall,
		Listen:           lm,
		Keeper:           keeper,
		Node:             cfg.NodeName(),
	}, log, ports, reg)
	lm.OnEnded(engine.ListenerEnded)
	agent, err := sip.NewAgent(sip.Config{
		Listen:      cfg.SIP.Listen,
		Transports:  cfg.SIP.Transports,
		Advertise:   cfg.SIP.Advertise,
		Allow:       allow,
		UserAgent:   cfg.SIP.UserAgent,
		Credentials: sip.Credentials{Username: cfg.Trunk.Username, Password: cfg.Trunk.Password},
		Accepting:   func() bool { return !engine.Draining() },
		RetryAfter:  int(cfg.Calls.RetryAfter.Seconds()),
		Flood: flood.Config{
			Rate:       cfg.SIP.Flood.Rate,
			Burst:      cfg.SIP.Flood.Burst,
			BlockAfter: cfg.SIP.Flood.BlockAfter,
			BlockFor:   cfg.SIP.Flood.BlockFor,
		},
		RefuseWith403:   cfg.SIP.Refused == "403",
		Scanners:        cfg.SIP.Scanners,
		SummaryInterval: cfg.SIP.LogInterval,
		SessionTimer:    cfg.Calls.SessionTimer,
		MinSE:           cfg.Calls.MinSE,
		TimerUnit:       cfg.Calls.SessionTimerUnit,
		LargeOver:       cfg.Trunk.LargeOver,
		Peers:           largeOverPeers(&cfg),
		TLS:             sipTLS(cfg.SIP.TLS),
	}, log, engine.HandleInvite)
	if err != nil {
		lm.Close()
		a.closeStore()
		return nil, err
	}
	warnTLS(cfg, log)
	engine.SetAgent(agent)
	a.agent, a.engine, a.reg, a.ports = agent, engine, reg, ports
	fail := func(err error) (*App, error) {
		agent.Close()
		agent.Wait()
		lm.Close()
		a.closeStore()
		return nil, err
	}
	if err := a.setupAPI(opts); err != nil {
		return fail(err)
	}
	if a.adopt, err = a.recoverCalls(); err != nil {
		a.store.Close()
		a.apiLn.Close()
		return fail(err)
	}
	if a.cluster != nil {
		a.api.SetRecords(a.cluster)
	}
	return a, nil
}

// setupAPI opens the audit store, builds the client list and binds the API.
func (a *App) setupAPI(opts Options) error {
	cfg := a.cfg
	authn, err := auth.New(cfg.Clients, cfg.Roles)
	if err != nil {
		return err
	}
	a.auth = authn
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	if cfg.Admin.Token != "" {
		authn.AddClient(auth.NewAdmin(), auth.HashToken(cfg.Admin.Token))
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %s: %w", cfg.API.Listen, err)
	}
	scheme := "http"
	if cfg.API.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.API.TLSCert, cfg.API.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("api.tls_cert/api.tls_key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	a.apiLn = ln
	a.apiURL = scheme + "://" + ln.Addr().String()
	if len(cfg.Clients) == 0 && cfg.Admin.Token == "" {
		// Out of the box: one admin token, shown once, never stored.
		token, hash, err := auth.NewToken()
		if err != nil {
			ln.Close()
			return err
		}
		authn.AddClient(auth.NewAdmin(), hash)
		fmt.Fprintf(out, "\ncallctl: no API clients configured; this admin token works until callctl stops:\n\n    %s\n\n  console: %s/\n  API:     %s/api/v1/sessions  (Authorization: Bearer <token>)\n\n", token, a.apiURL, a.apiURL)
	}
	store, err := audit.Open(cfg.Audit.Path)
	if err != nil {
		ln.Close()
		return fmt.Errorf("audit.path: %w", err)
	}
	a.store = store
	a.api = api.New(api.Options{
		Engine:           a.engine,
		Auth:             authn,
		Audit:            store,
		Log:              a.log.Named("api"),
		EventBuffer:      cfg.API.EventBuffer,
		Static:           opts.Web,
		Ready:            func() bool { return !a.engine.Draining() },
		SIPStats:         a.agent.Stats,
		SIPRefused:       a.agent.Refused,
		SIPDropped:       a.agent.Dropped,
		SIPSendFailures:  a.agent.SendFailures,
		SIPLargeMessages: a.agent.LargeMessages,
		SIPPanics:        a.agent.Panics,
		MediaForeign:     a.ports.ForeignDropped,
		SRTPDropped:      a.ports.SRTPDropped,
		StoreWrites:      a.storeWritesMetric(),
		Reload:           a.apiReload,
		ConfigReloads:    a.ConfigReloads,
	})
	return nil
}

// APIURL is the base URL of the HTTP API, e.g. http://127.0.0.1:8080.
func (a *App) APIURL() string { return a.apiURL }

func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("sip.allow %q: %w", s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("sip.allow %q: not an address or CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// Engine runs the sessions and their operations (for the API and tests).
func (a *App) Engine() *session.Engine { return a.engine }

// Sessions is the session registry (for the API and tests).
func (a *App) Sessions() *session.Registry { return a.reg }

// PortsInUse is the number of RTP port pairs allocated now.
func (a *App) PortsInUse() int { return a.ports.InUse() }

// SIPAddr is the host:port callctl's SIP listens on.
func (a *App) SIPAddr() string { return a.agent.Addr() }

// Dialogs is the number of SIP dialogs callctl tracks (for leak checks).
func (a *App) Dialogs() int { return a.agent.Dialogs() }

// Run serves until ctx is done, then drains: new calls get 503, live calls
// may go on for shutdown.drain_timeout, then the rest are ended (ABORTED).
// It returns once every goroutine it started has stopped.
func (a *App) Run(ctx context.Context) error {
	a.api.Start()
	srv := &http.Server{Handler: a.api.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(a.log.Named("http"))}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(a.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("API server stopped", zap.Error(err))
		}
	}()
	a.agent.Serve()
	a.adopt()
	if a.cluster != nil {
		if err := a.cluster.Start(); err != nil {
			a.log.Error("cluster: not watching the other nodes", zap.Error(err))
		}
	}
	a.log.Info("callctl serving",
		zap.String("sip", a.agent.Addr()),
		zap.Strings("transports", a.cfg.SIP.Transports),
		zap.String("sip_tls", a.agent.TLSAddr()),
		zap.String("trunk", a.cfg.Trunk.Address),
		zap.String("rtp_ports", a.cfg.Media.RTPPorts),
		zap.String("api", a.apiURL))
	<-ctx.Done()

	a.engine.Drain()
	// In a cluster the calls go on on the other nodes (docs/cluster.md).
	if a.cluster != nil && a.cluster.HandOff(a.cfg.Shutdown.DrainTimeout) {
		a.log.Info("calls handed to the other nodes", zap.Int("left", a.reg.LiveCount()))
	}
	if n := a.reg.LiveCount(); n > 0 {
		a.log.Info("draining live calls", zap.Int("sessions", n), zap.Duration("drain_timeout", a.cfg.Shutdown.DrainTimeout))
	}
	waitFor(a.cfg.Shutdown.DrainTimeout, func() bool { return a.reg.LiveCount() == 0 })
	a.engine.AbortAll("callctl shutting down")
	a.engine.Wait()
	a.listen.Close()
	// Give the BYEs and CANCELs just sent a moment to be answered.
	waitFor(2*time.Second, func() bool { return a.agent.Dialogs() == 0 })
	a.agent.Close()
	a.agent.Wait()
	a.api.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	<-served
	if err := a.store.Close(); err != nil {
		a.log.Warn("closing the audit store", zap.Error(err))
	}
	if a.cluster != nil {
		a.cluster.Stop()
	}
	a.closeStore()
	a.log.Info("callctl stopped")
	return nil
}

func waitFor(d time.Duration, done func() bool) {
	deadline := time.Now().Add(d)
	for !done() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// newListenManager sets up listen-in's WebRTC side from the config.
func newListenManager(cfg config.Config, log *zap.Logger) (*listen.Manager, error) {
	lc := listen.Config{
		ICEIPs:     cfg.Listen.ICEIPs,
		NAT1To1IPs: cfg.Listen.NAT1To1IPs,
		SinglePort: cfg.Listen.SinglePort,
		ICETimeout: cfg.Listen.ICETimeout,
		Log:        log.Named("listen"),
	}
	if len(lc.ICEIPs) == 0 {
		lc.ICEIPs = []string{cfg.Media.IP}
	}
	if cfg.Listen.UDPPorts != "" {
		lo, hi, err := config.ParsePortRange(cfg.Listen.UDPPorts)
		if err != nil {
			return nil, fmt.Errorf("listen.udp_ports: %w", err)
		}
		lc.PortMin, lc.PortMax = uint16(lo), uint16(hi)
	}
	lm, err := listen.NewManager(lc)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return lm, nil
}
