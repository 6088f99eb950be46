// Command callctl is the call-control daemon: a SIP B2BUA with media
// anchoring that runs beside a PBX, and the client that drives a running
// one over its API. See README.md and configs/callctl.yaml.
//
//	callctl [serve] [flags]        run the daemon (the default)
//	callctl config check [flags]   validate the effective configuration
//	callctl config print [flags]   print it as YAML, secrets redacted
//	callctl config reload [flags]  make the running daemon re-read it (as SIGHUP)
//	callctl version
//	callctl sessions [--watch]     list the sessions, or follow their events
//	callctl hold|unhold|hangup|close|close-with-hangup ID
//	callctl transfer ID TRANSFEROR TARGET
//	callctl forward ID TARGET
//	callctl dtmf ID PARTY KEYS
//	callctl token new              print a new API token and its hash
//
// Exit codes: 0 clean stop or success, 1 runtime error (or the API refused),
// 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/logging"
	"github.com/callctl/callctl/web"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2 // bad command line or configuration
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, environ, stdout, stderr)
}

// runContext is run with a context whose end stops a client command (a
// `sessions --watch` follows events until then).
func runContext(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, environ, stdout, stderr)
	case "demo":
		return demoCmd(ctx, args, stdout, stderr)
	case "config":
		return configCmd(args, environ, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "callctl %s (%s)\n", version, runtime.Version())
		return exitOK
	case "token":
		return tokenCmd(args, stdout, stderr)
	case "help":
		usage(stdout)
		return exitOK
	}
	if c, ok := lookupClientCommand(cmd); ok {
		return runClient(ctx, c, args, environ, stdout, stderr)
	}
	fmt.Fprintf(stderr, "callctl: unknown command %q\n\n", cmd)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  callctl [serve] [flags]        run the call-control daemon (the default)
  callctl demo [flags]           callctl with a simulated PBX and phones on loopback (see callctl demo -h)
  callctl config check [flags]   validate the effective configuration; prints "ok" or the errors
  callctl config print [flags]   print the effective configuration as YAML (secrets redacted)
  callctl config reload [flags]  ask the running callctl to re-read its configuration, as SIGHUP does
                                 (client flags; needs config.reload; exit 1 when refused)
  callctl version                print the version
  callctl token new              print a new API token and the token_hash for the configuration

Client commands, talking to a running callctl's API:
`)
	for _, c := range clientCommands {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimPrefix(c.usageLine(), "callctl "), c.help)
	}
	fmt.Fprint(w, `
Flags (serve, config check, config print):
`)
	fs := newFlagSet("callctl")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Precedence: built-in defaults < config file < CALLCTL_<SECTION>_<KEY> environment variables < flags.
Every key is documented in configs/callctl.yaml.

Flags (client commands, anywhere on the line):
`)
	fs = newClientFlagSet("callctl", &clientOptions{}, &sessionsOptions{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// load runs loadConfig and reports its errors; ok is false when the caller
// should exit with code.
func load(args, environ []string, stdout, stderr io.Writer) (cfg config.Config, code int, ok bool) {
	cfg, err := loadConfig(args, environ)
	var uerr *usageError
	switch {
	case err == nil:
		return cfg, exitOK, true
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return cfg, exitOK, false
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "callctl: %v (see callctl -h)\n", err)
	default:
		fmt.Fprintf(stderr, "callctl: %v\n", err)
	}
	return cfg, exitUsage, false
}

// validate reports cfg's problems, one per line, and says whether it is valid.
func validate(cfg config.Config, stderr io.Writer) bool {
	// The clients and roles are checked as serve's API builds them.
	if err := errors.Join(cfg.Validate(), auth.Check(cfg.Clients, cfg.Roles)); err != nil {
		fmt.Fprintf(stderr, "callctl: invalid configuration:\n%s\n", err)
		return false
	}
	return true
}

func configCmd(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "reload" {
		return reloadCmd(context.Background(), args[1:], environ, stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "check" && args[0] != "print") {
		fmt.Fprint(stderr, "callctl: config needs a subcommand: check, print or reload\n\n")
		usage(stderr)
		return exitUsage
	}
	sub := args[0]
	cfg, code, ok := load(args[1:], environ, stdout, stderr)
	if !ok {
		return code
	}
	if sub == "print" {
		enc := yaml.NewEncoder(stdout)
		enc.SetIndent(2) // as in configs/callctl.yaml
		if err := errors.Join(enc.Encode(cfg.Redacted()), enc.Close()); err != nil {
			fmt.Fprintf(stderr, "callctl: %v\n", err)
			return exitRuntime
		}
	}
	if !validate(cfg, stderr) {
		return exitUsage
	}
	if sub == "check" {
		fmt.Fprintln(stdout, "ok")
	}
	return exitOK
}

// serve runs the daemon until SIGTERM or SIGINT, then drains and returns.
func serve(args, environ []string, stdout, stderr io.Writer) int {
	cfg, code, ok := load(args, environ, stdout, stderr)
	if !ok {
		return code
	}
	if !validate(cfg, stderr) {
		return exitUsage
	}
	logger, err := logging.New(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "callctl: %v\n", err)
		return exitUsage
	}
	defer logger.Sync() //nolint:errcheck // syncing a terminal fails harmlessly
	// Libraries that log through zap's global logger (sipgo's fallback) use ours.
	defer zap.ReplaceGlobals(logger)()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done() // ends at the signal or when serve returns (deferred stop)
		// Restore default handling: a second signal during the drain kills
		// the process at once.
		stop()
	}()

	logger.Info("callctl starting", zap.String("version", version)) // app logs the addresses

	// Load lets a reload (SIGHUP, callctl config reload) build the
	// configuration again from the same file, environment and flags.
	reloadFrom := func() (config.Config, error) { return loadConfig(args, environ) }
	a, err := app.NewWithOptions(cfg, logger, app.Options{Web: web.FS(), Out: stderr, Load: reloadFrom})
	if err != nil {
		logger.Error("cannot start", zap.Error(err))
		return exitRuntime
	}
	stopHangup := onHangup(func() { _, _ = a.Reload() }) // Reload logs the outcome
	defer stopHangup()
	if err := a.Run(ctx); err != nil {
		logger.Error("stopped with an error", zap.Error(err))
		return exitRuntime
	}
	logger.Info("callctl stopped")
	return exitOK
}
