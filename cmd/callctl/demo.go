package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/demo"
	"github.com/callctl/callctl/internal/logging"
	"github.com/callctl/callctl/web"
)

// demoRingTimeout is callctl's ring timeout in the demo: short, so that
// calls nobody answers end while someone is watching.
const demoRingTimeout = 15 * time.Second

// demoOptions are the flags of `callctl demo`.
type demoOptions struct {
	sip, api, rtpPorts, pbx, logLevel string
	calls                             int
}

func newDemoFlagSet(o *demoOptions) *flag.FlagSet {
	def := config.Default()
	fs := flag.NewFlagSet("callctl demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed by the caller
	fs.StringVar(&o.sip, "sip", def.SIP.Listen, "callctl's SIP listen `ADDR` (loopback)")
	fs.StringVar(&o.api, "api", def.API.Listen, "HTTP API and console listen `ADDR` (loopback)")
	fs.StringVar(&o.rtpPorts, "rtp-ports", def.Media.RTPPorts, "callctl's RTP port range `LO-HI` (LO even, HI odd)")
	fs.StringVar(&o.pbx, "pbx", "", "the simulated PBX's SIP `ADDR` (loopback; default a free port on 127.0.0.1)")
	fs.IntVar(&o.calls, "calls", 3, "how many calls the PBX places at a time")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log `LEVEL`: debug, info (every call), warn or error")
	return fs
}

func demoUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: callctl demo [flags]

Runs callctl with a simulated PBX and phones on loopback that place calls
through it continuously, and prints the console's URL and an admin token.
Nothing else is needed; Ctrl-C stops both.

Flags:
`)
	fs := newDemoFlagSet(&demoOptions{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// demoCmd runs `callctl demo` until SIGINT or SIGTERM (or ctx's end): callctl
// with settings that work out of the box (trunk at the simulated PBX, a short
// ring timeout, no routes, a fresh admin token, the audit trail in a
// temporary directory removed at the end), then the simulation. On the
// signal the phones hang up first, then callctl stops.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o demoOptions
	fs := newDemoFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			demoUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "callctl: demo: %v (see callctl demo -h)\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "callctl: demo: unexpected argument %q (see callctl demo -h)\n", fs.Arg(0))
		return exitUsage
	}
	for _, f := range []struct{ name, addr string }{{"--sip", o.sip}, {"--api", o.api}, {"--pbx", o.pbx}} {
		if f.addr == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(f.addr); err != nil || !ap.Addr().IsLoopback() {
			fmt.Fprintf(stderr, "callctl: demo: %s %q: want a loopback ip:port such as 127.0.0.1:5070 (the demo stays on this machine)\n", f.name, f.addr)
			return exitUsage
		}
	}
	if o.calls < 1 {
		fmt.Fprintf(stderr, "callctl: demo: --calls %d: want 1 or more\n", o.calls)
		return exitUsage
	}
	if o.pbx == "" {
		pbx, err := freeUDPAddr()
		if err != nil {
			fmt.Fprintf(stderr, "callctl: demo: no free UDP port for the simulated PBX: %v\n", err)
			return exitRuntime
		}
		o.pbx = pbx
	}
	token, _, err := auth.NewToken()
	if err != nil {
		fmt.Fprintf(stderr, "callctl: demo: making a token: %v\n", err)
		return exitRuntime
	}
	dir, err := os.MkdirTemp("", "callctl-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "callctl: demo: %v\n", err)
		return exitRuntime
	}
	defer os.RemoveAll(dir)

	cfg := config.Default()
	cfg.SIP.Listen = o.sip
	cfg.API.Listen = o.api
	cfg.Media.RTPPorts = o.rtpPorts
	cfg.Trunk.Address = o.pbx
	cfg.Trunk.Transport = "udp"
	cfg.Routes = nil
	cfg.Calls.RingTimeout = demoRingTimeout
	cfg.Audit.Path = filepath.Join(dir, "callctl-demo.db")
	cfg.Admin.Token = token
	cfg.Log.Level = o.logLevel
	cfg.Shutdown.DrainTimeout = 5 * time.Second // the phones have hung up by then
	if !validate(cfg, stderr) {
		return exitUsage
	}
	logger, err := logging.New(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "callctl: demo: %v\n", err)
		return exitUsage
	}
	defer logger.Sync() //nolint:errcheck // syncing a terminal fails harmlessly
	defer zap.ReplaceGlobals(logger)()

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done() // the signal, or demoCmd returning (deferred stop)
		stop()       // a second Ctrl-C kills the process at once
	}()

	a, err := app.NewWithOptions(cfg, logger, app.Options{Web: web.FS(), Out: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "callctl: demo: cannot start callctl: %v\n", err)
		return exitRuntime
	}
	appCtx, stopApp := context.WithCancel(context.Background())
	defer stopApp()
	ran := make(chan error, 1)
	go func() { ran <- a.Run(appCtx) }()

	sim, err := demo.Start(ctx, demo.Options{CallctlSIP: a.SIPAddr(), PBXListen: o.pbx, MaxCalls: o.calls, Log: logger.Named("demo")})
	if err != nil {
		fmt.Fprintf(stderr, "callctl: demo: cannot start the simulated PBX: %v\n", err)
		stopApp()
		<-ran
		return exitRuntime
	}
	fmt.Fprintf(stdout, `
callctl demo: a simulated PBX (%s) places %d calls at a time through callctl (SIP %s).

  open %s/ and sign in with token %s

  or follow it here: CALLCTL_API_URL=%s CALLCTL_TOKEN=%s callctl sessions --watch

Ctrl-C stops the demo.
`, sim.PBXAddr(), o.calls, a.SIPAddr(), a.APIURL(), token, a.APIURL(), token)

	code := exitOK
	var runErr error
	select {
	case <-ctx.Done():
		sim.Stop() // the phones hang up first, then callctl stops
		stopApp()
		runErr = <-ran
	case runErr = <-ran:
		// callctl stopped on its own: stop the phones too.
		code = exitRuntime
		sim.Stop()
	}
	if runErr != nil {
		logger.Error("callctl stopped with an error", zap.Error(runErr))
		code = exitRuntime
	}
	st := sim.Stats()
	fmt.Fprintf(stdout, "callctl demo stopped: %d calls placed, %d answered, %d refused, %d given up, %d transferred.\n",
		st.Placed, st.Answered, st.Refused, st.Cancelled, st.Transfers)
	return code
}

// freeUDPAddr returns a 127.0.0.1 address whose UDP port is free now (the
// simulated PBX binds it a moment later).
func freeUDPAddr() (string, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}
