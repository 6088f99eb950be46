package callctltest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
	"go.uber.org/zap"
)

// Config is the configuration in-process test callctls start from: SIP
// over UDP and TCP on a free port of 127.0.0.1 allowing 127.0.0.0/8, the
// API on another, its own RTP range of rtpPorts ports, short port rest,
// media timeout, ring timeout and drain, an audit database in the test's
// temporary directory and token as the admin token.
func Config(t *testing.T, rtpPorts int, token string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	cfg.SIP.Transports = []string{"udp", "tcp"}
	cfg.SIP.Allow = []string{"127.0.0.0/8"}
	cfg.API.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, rtpPorts)
	cfg.Media.IP = "127.0.0.1"
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Media.Timeout = 15 * time.Second
	cfg.Calls.RingTimeout = 15 * time.Second
	cfg.Shutdown.DrainTimeout = 2 * time.Second
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = token
	return cfg
}

// Run starts callctl with cfg in-process and returns it with a
// subscription to its session events taken before any call. The test's
// cleanup cancels it and waits for Run to return.
func Run(t *testing.T, cfg config.Config, log *zap.Logger) (*app.App, Events) {
	t.Helper()
	a, err := app.New(cfg, log)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ev := Events{Sub: a.Sessions().Subscribe(4096)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("callctl Run: %v", err)
			}
		case <-time.After(cfg.Shutdown.DrainTimeout + 15*time.Second):
			t.Errorf("callctl Run still running %v after cancel", cfg.Shutdown.DrainTimeout+15*time.Second)
		}
		ev.Sub.Close()
	})
	return a, ev
}
