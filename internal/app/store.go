package app

import (
	"context"
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/cluster"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/store"
	"go.uber.org/zap"
)

// openTimeout bounds opening the store at start: an unreachable external
// NATS system is an error then, not a hang.
const openTimeout = 15 * time.Second

// openStore opens the live-call store of cfg.Cluster; nil when it is off.
func openStore(cfg config.Config, log *zap.Logger) (*store.Store, error) {
	if cfg.Cluster.Store == "off" {
		return nil, nil
	}
	n := cfg.Cluster.NATS
	e := cfg.Cluster.Embedded
	var secret string
	if e.Listen != "" {
		// Validate read it already; the file may have changed since.
		var err error
		if secret, err = e.RouteSecret(); err != nil {
			return nil, fmt.Errorf("cluster.embedded.route_secret_file: %w", err)
		}
	}
	opts := store.Options{
		Node: cfg.NodeName(), Embedded: cfg.Cluster.Store == "embedded", Dir: cfg.StoreDir(),
		URL: n.URL, Credentials: n.Credentials, CAFile: n.CAFile, CertFile: n.CertFile, KeyFile: n.KeyFile,
		Replicas:      cfg.Cluster.Replicas,
		ClusterListen: e.Listen, ClusterName: e.Name, Routes: e.Routes, RouteSecret: secret,
		RouteCertFile: e.TLS.CertFile, RouteKeyFile: e.TLS.KeyFile, RouteCAFile: e.TLS.CAFile,
		NodeTimeout: cfg.Cluster.NodeTimeout,
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	st, err := store.Open(ctx, opts, log.Named("store"))
	if err != nil {
		return nil, fmt.Errorf("cluster.store %s: %w", cfg.Cluster.Store, err)
	}
	return st, nil
}

// recoverCalls reads back the store's call records and re-adopts this
// node's; the returned start begins their re-INVITEs once SIP serves.
func (a *App) recoverCalls() (start func(), err error) {
	if a.calls == nil {
		return func() {}, nil
	}
	a.cluster = cluster.New(cluster.Config{
		Node: a.cfg.NodeName(), Heartbeat: a.cfg.Cluster.Heartbeat, NodeTimeout: a.cfg.Cluster.NodeTimeout,
		SIP: a.agent.Addr(), API: a.apiURL, Audit: a.store,
	}, a.calls, a.engine, a.log.Named("cluster"))
	a.engine.SetForwarder(a.cluster)
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	start, err = a.cluster.Adopt(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster.store: reading the live calls back: %w", err)
	}
	return start, nil
}

// storeWritesMetric is the writer's counters by result, for /metrics; nil
// without a store.
func (a *App) storeWritesMetric() func() map[string]uint64 {
	if a.writer == nil {
		return nil
	}
	return func() map[string]uint64 {
		st := a.writer.Stats()
		return map[string]uint64{"ok": st.Writes - st.Failures - st.Conflicts, "failed": st.Failures, "conflict": st.Conflicts}
	}
}

// closeStore writes what is pending and closes the store.
func (a *App) closeStore() {
	if a.writer != nil {
		a.writer.Close(5 * time.Second)
	}
	if a.calls != nil {
		a.calls.Close()
	}
}
