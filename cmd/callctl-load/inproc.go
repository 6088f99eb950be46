package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
)

// inprocCallctl is callctl running inside the generator's process: for the
// smoke test and for profiling (one CPU profile covers both; the
// generator's goroutines are labelled side=loadgen).
type inprocCallctl struct {
	sipAddr, apiURL, token string
	dir                    string
	cancel                 context.CancelFunc
	done                   chan error
}

// startInproc starts callctl on free loopback ports, with a temporary audit
// database, an admin token, and its trunk at trunk (the generator's callee
// side). store is its cluster.store (embedded or off; embedded keeps its
// JetStream files in the same temporary directory).
func startInproc(trunk, rtpPorts string, retention time.Duration, store string, stderr io.Writer) (*inprocCallctl, error) {
	dir, err := os.MkdirTemp("", "callctl-load-")
	if err != nil {
		return nil, err
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	c := &inprocCallctl{dir: dir, token: "load-" + hex.EncodeToString(tok[:]), done: make(chan error, 1)}

	cfg := config.Default()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.SIP.Transports = []string{"udp"}
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Trunk.Address = trunk
	cfg.Media.RTPPorts = rtpPorts
	cfg.Media.PortRest = time.Second
	cfg.Calls.MaxSessions = 20000
	if retention > 0 {
		cfg.Calls.EndedRetention = retention
	}
	cfg.SIP.Flood.Rate = 0 // the generator is one source sending far above sip.flood.rate
	cfg.Audit.Path = filepath.Join(dir, "audit.db")
	cfg.Cluster.Store = store
	cfg.Admin.Token = c.token
	cfg.Shutdown.DrainTimeout = 2 * time.Second

	enc := zap.NewDevelopmentEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zapcore.WarnLevel))
	a, err := app.NewWithOptions(cfg, log, app.Options{Out: io.Discard})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting callctl in-process: %w", err)
	}
	c.sipAddr, c.apiURL = a.SIPAddr(), a.APIURL()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Labelled, so that a profile of the process can be split (callctl-load
	// -cpuprofile, then go tool pprof -tagfocus side=callctl).
	go pprof.Do(ctx, pprof.Labels("side", "callctl"), func(ctx context.Context) { c.done <- a.Run(ctx) })
	return c, nil
}

// stop stops callctl (draining what is left) and removes its files.
func (c *inprocCallctl) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
	os.RemoveAll(c.dir)
}

// freeUDPPort returns a loopback UDP port free a moment ago.
func freeUDPPort() (string, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}
