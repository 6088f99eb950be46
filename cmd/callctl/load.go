package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/callctl/callctl/internal/config"
)

// configEnv names the environment variable that gives the config file when
// --config is not on the command line.
const configEnv = "CALLCTL_CONFIG"

// settingFlags are the flags of serve (and of config check/print) that set a
// configuration key: flag name, value placeholder, key set, help text.
var settingFlags = []struct {
	name, arg, key, help string
	set                  func(*config.Config, string)
}{
	{"sip", "ADDR", "sip.listen", "SIP listen `ADDR` (host:port), UDP and TCP",
		func(c *config.Config, v string) { c.SIP.Listen = v }},
	{"pbx", "HOST:PORT", "trunk.address", "PBX trunk `HOST:PORT` that B legs go to",
		func(c *config.Config, v string) { c.Trunk.Address = v }},
	{"api", "ADDR", "api.listen", "HTTP API and console listen `ADDR` (host:port)",
		func(c *config.Config, v string) { c.API.Listen = v }},
	{"rtp-ports", "LO-HI", "media.rtp_ports", "RTP port range `LO-HI` (LO even, HI odd)",
		func(c *config.Config, v string) { c.Media.RTPPorts = v }},
	{"log-level", "LEVEL", "log.level", "log `LEVEL`: debug, info, warn or error",
		func(c *config.Config, v string) { c.Log.Level = v }},
}

// newFlagSet returns the flags shared by serve, config check and config
// print. Values are read back with Visit, so only flags given count.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed by the caller
	fs.String("config", "", "YAML config `FILE` (default $"+configEnv+", else built-in defaults)")
	def := config.Default()
	defaults := map[string]string{
		"sip.listen": def.SIP.Listen, "trunk.address": def.Trunk.Address, "api.listen": def.API.Listen,
		"media.rtp_ports": def.Media.RTPPorts, "log.level": def.Log.Level,
	}
	for _, f := range settingFlags {
		fs.String(f.name, "", fmt.Sprintf("%s (key %s, default %s)", f.help, f.key, defaults[f.key]))
	}
	return fs
}

// loadConfig builds the effective configuration for a command line:
// defaults < config file (--config, else $CALLCTL_CONFIG) < CALLCTL_*
// environment variables < flags. It does not validate the result. args are
// the flags after the subcommand; environ is as from os.Environ. A -h/--help
// returns flag.ErrHelp.
func loadConfig(args []string, environ []string) (config.Config, error) {
	fs := newFlagSet("callctl")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, err
		}
		return config.Config{}, &usageError{err}
	}
	if fs.NArg() > 0 {
		return config.Config{}, &usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })

	path, ok := given["config"]
	if !ok {
		path = lookupEnv(environ, configEnv)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return config.Config{}, err
	}
	if err := errors.Join(unknownEnvError(environ), config.ApplyEnv(&cfg, environ)); err != nil {
		return config.Config{}, err
	}
	for _, f := range settingFlags {
		if v, ok := given[f.name]; ok {
			f.set(&cfg, v)
		}
	}
	return cfg, nil
}

// lookupEnv returns the value of name in environ, or "".
func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// knownEnv is every CALLCTL_* variable callctl reads: the configuration's
// and the commands' own.
func knownEnv() []string {
	return append(config.EnvVars(), configEnv, adminTokenEnv, tokenEnv, apiURLEnv)
}

// unknownEnv lists CALLCTL_* variables in environ that nothing reads, so a
// misspelt one does not go unnoticed. Only names are returned: values may
// be secrets.
func unknownEnv(environ []string) []string {
	known := map[string]bool{}
	for _, name := range knownEnv() {
		known[name] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

// unknownEnvError refuses the CALLCTL_* variables nothing reads, each
// with the nearest real one when there is one: a misspelt variable would
// otherwise leave its setting at the file's value unnoticed.
func unknownEnvError(environ []string) error {
	var errs []error
	for _, name := range unknownEnv(environ) {
		msg := name + " is not a callctl variable"
		if near := config.Closest(name, knownEnv()); near != "" {
			msg += "; did you mean " + near + "?"
		} else {
			msg += " (callctl config print shows the settings; each is CALLCTL_<SECTION>_<KEY>)"
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

// usageError is a command-line mistake (unknown flag, stray argument), as
// opposed to a bad configuration value; the caller adds a usage hint.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
