package app

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/callctl/callctl/internal/api"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/flood"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/internal/sip"
	"go.uber.org/zap"
)

// reloader is the App's configuration reload state (Reload).
type reloader struct {
	// load re-builds the effective configuration the way it was built at
	// start (Options.Load); nil means only the TLS certificate reloads.
	load func() (config.Config, error)

	mu      sync.Mutex    // one reload at a time
	current config.Config // the configuration in force, guarded by mu
	// ok and refused count reloads, for callctl_config_reloads_total.
	ok, refused atomic.Uint64
}

// ReloadResult is what a reload changed.
type ReloadResult struct {
	// Changed are the configuration keys whose values changed (config.Diff).
	Changed []string
	// Clients is what happened to the API clients, by name.
	Clients auth.Change
	// Summary says it in one line, e.g. "clients: +1 -0 ~0; sip.allow";
	// it never holds a token or a hash.
	Summary string
}

// Reload re-reads the configuration (SIGHUP, POST /api/v1/config/reload)
// from where it came at start (Options.Load: the --config file, the
// CALLCTL_* environment and the flags, with the same precedence), checks
// it as `serve` does, and only then switches to it: the API clients and
// roles, sip.allow, sip.refused, sip.scanners, the routes and
// calls.transfer_hosts, calls.max_sessions and calls.max_per_source
// (config.Reloadable), and reloads the SIP TLS certificate. Everything is
// built and checked before anything switches, so a reload applies whole or
// not at all: a file that does not parse or validate, or that changes a
// key only a restart applies (a *config.RestartError names each), changes
// nothing. Live calls are untouched: they keep their legs, media and
// routes; a transfer or forward started afterwards goes by the new routes.
// A client removed or changed loses its event streams and listen-ins at
// once (it reconnects, if it still may, with its new rights) and its
// token works no more from the next request. The outcome is logged once
// and counted.
func (a *App) Reload() (ReloadResult, error) {
	r := &a.reload
	r.mu.Lock()
	defer r.mu.Unlock()
	res, err := a.reloadLocked()
	if err != nil {
		r.refused.Add(1)
		a.log.Error("configuration not reloaded: refused, nothing changed, the previous one stays in use", zap.Error(err))
		return res, err
	}
	r.ok.Add(1)
	a.log.Info("configuration reloaded", zap.String("changes", res.Summary), zap.Strings("keys", res.Changed))
	return res, nil
}

// ConfigReloads counts reloads by result: "ok" and "refused".
func (a *App) ConfigReloads() map[string]uint64 {
	return map[string]uint64{"ok": a.reload.ok.Load(), "refused": a.reload.refused.Load()}
}

// reloadPlan is a checked new configuration, every part built, ready to
// switch in.
type reloadPlan struct {
	cfg     config.Config
	changed []string
	clients *auth.Table
	policy  sip.Policy
	engine  session.Reloadable
}

func (a *App) reloadLocked() (ReloadResult, error) {
	r := &a.reload
	cfg := r.current
	if r.load != nil {
		var err error
		if cfg, err = r.load(); err != nil {
			return ReloadResult{}, fmt.Errorf("reading the configuration: %w", err)
		}
	}
	plan, err := planReload(r.current, cfg)
	if err != nil {
		return ReloadResult{}, err
	}
	// The certificate is the one part that can still fail: load it first,
	// so a bad one leaves everything as it was.
	if cfg.SIP.TLS.CertFile != "" {
		if err := a.agent.ReloadCertificate(); err != nil {
			return ReloadResult{}, fmt.Errorf("sip.tls.cert_file %s / sip.tls.key_file %s: %w; the certificate was not reloaded, the previous one stays in use",
				cfg.SIP.TLS.CertFile, cfg.SIP.TLS.KeyFile, err)
		}
	}
	res := ReloadResult{Changed: plan.changed}
	res.Clients = a.auth.Replace(plan.clients)
	a.agent.SetPolicy(plan.policy)
	a.engine.Reload(plan.engine)
	r.current = plan.cfg
	if !res.Clients.Empty() {
		a.dropStale(res.Clients)
	}
	res.Summary = summary(res, cfg.SIP.TLS.CertFile != "")
	return res, nil
}

// planReload checks cfg as `serve` would and against old (only reloadable
// keys may differ), and builds every part of it.
func planReload(old, cfg config.Config) (*reloadPlan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	changed, err := config.CheckReload(old, cfg)
	if err != nil {
		return nil, err
	}
	p := &reloadPlan{cfg: cfg, changed: changed}
	if p.clients, err = auth.Compile(cfg.Clients, cfg.Roles); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	allow, err := prefixes(cfg.SIP.Allow)
	if err != nil {
		return nil, err
	}
	p.policy = sip.Policy{Allow: allow, RefuseWith403: cfg.SIP.Refused == "403", Scanners: cfg.SIP.Scanners,
		Flood: floodConfig(cfg.SIP.Flood), Peers: largeOverPeers(&cfg)}
	routes, err := compileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	p.engine = session.Reloadable{Routes: routes, TransferHosts: cfg.Calls.TransferHosts,
		MaxSessions: cfg.Calls.MaxSessions, MaxPerSource: cfg.Calls.MaxPerSource}
	return p, nil
}

// floodConfig is the SIP layer's view of sip.flood.
func floodConfig(f config.Flood) flood.Config {
	return flood.Config{Rate: f.Rate, Burst: f.Burst, BlockAfter: f.BlockAfter, BlockFor: f.BlockFor}
}

// compileRoutes makes the engine's routes from cfg.Routes, with their srtp.
func compileRoutes(cfg config.Config) ([]session.Route, error) {
	var routes []session.Route
	for i, r := range cfg.Routes {
		re, err := regexp.Compile("^(?:" + r.Match + ")$")
		if err != nil {
			return nil, fmt.Errorf("routes[%d].match %q: %w", i, r.Match, err)
		}
		routes = append(routes, session.Route{Match: re, Target: r.Target, Transport: r.Transport})
	}
	if _, err := srtpConfig(cfg, routes); err != nil {
		return nil, err
	}
	return routes, nil
}

// dropStale ends what removed or changed clients hold open beyond one
// request: their event streams (closed with a reason; a client that may
// still connect resumes from its last seq with its new rights) and their
// listen-ins (ended; the browser may start a new one). Keeping them would
// let a removed supervisor go on watching or listening.
func (a *App) dropStale(ch auth.Change) {
	a.api.DropStreams(func(c *auth.Client) bool { return !a.auth.Knows(c) },
		"this client's access changed in a configuration reload; reconnect")
	stale := append(slices.Clone(ch.Removed), ch.Changed...)
	for _, snap := range a.reg.List() {
		for _, l := range a.listen.List(snap.ID) {
			if slices.Contains(stale, l.Client) {
				if err := a.listen.Stop(l.ID); err != nil {
					a.log.Debug("reload: stopping a listen-in", zap.String("listen_id", l.ID), zap.Error(err))
				}
			}
		}
	}
}

// summary is ReloadResult.Summary.
func summary(res ReloadResult, cert bool) string {
	var parts []string
	if len(res.Clients.Added)+len(res.Clients.Removed)+len(res.Clients.Changed) > 0 || slices.Contains(res.Changed, "clients") {
		parts = append(parts, fmt.Sprintf("clients: +%d -%d ~%d", len(res.Clients.Added), len(res.Clients.Removed), len(res.Clients.Changed)))
	}
	for _, k := range res.Changed {
		if k != "clients" {
			parts = append(parts, k)
		}
	}
	if cert {
		parts = append(parts, "SIP TLS certificate re-read")
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// IsRestartRequired reports whether err refused a reload for keys only a
// restart applies.
func IsRestartRequired(err error) bool {
	var re *config.RestartError
	return errors.As(err, &re)
}

// apiReload is Reload for the API (api.Options.Reload).
func (a *App) apiReload() (api.ReloadOutcome, error) {
	res, err := a.Reload()
	return api.ReloadOutcome{Changed: res.Changed, Summary: res.Summary,
		ClientsAdded: res.Clients.Added, ClientsRemoved: res.Clients.Removed, ClientsChanged: res.Clients.Changed}, err
}
