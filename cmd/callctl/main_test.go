package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/callctl/callctl/internal/config"
)

func TestMain(m *testing.M) {
	// The in-process callctls, the client commands' connections and the
	// watch goroutines all end before their tests do.
	goleak.VerifyTestMain(m)
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "callctl.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigPrecedenceDefaultsFileEnvFlags(t *testing.T) {
	file := writeConfig(t, "sip:\n  listen: 127.0.0.1:6000\ntrunk:\n  address: 10.0.0.1:5060\nlog:\n  level: debug\n")
	other := writeConfig(t, "log:\n  level: warn\n")
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    func(*config.Config)
	}{
		{"defaults without anything", nil, nil, func(*config.Config) {}},
		{"file over defaults", []string{"--config", file}, nil, func(c *config.Config) {
			c.SIP.Listen, c.Trunk.Address, c.Log.Level = "127.0.0.1:6000", "10.0.0.1:5060", "debug"
		}},
		{"CALLCTL_CONFIG names the file", nil, []string{"CALLCTL_CONFIG=" + file}, func(c *config.Config) {
			c.SIP.Listen, c.Trunk.Address, c.Log.Level = "127.0.0.1:6000", "10.0.0.1:5060", "debug"
		}},
		{"--config beats CALLCTL_CONFIG", []string{"-config=" + other}, []string{"CALLCTL_CONFIG=" + file}, func(c *config.Config) {
			c.Log.Level = "warn"
		}},
		{"--config \"\" means no file", []string{"--config", ""}, []string{"CALLCTL_CONFIG=" + file}, func(*config.Config) {}},
		{"environment over file", []string{"--config", file}, []string{"CALLCTL_SIP_LISTEN=127.0.0.1:7000"}, func(c *config.Config) {
			c.SIP.Listen, c.Trunk.Address, c.Log.Level = "127.0.0.1:7000", "10.0.0.1:5060", "debug"
		}},
		{"flags over environment", []string{"--config", file, "--sip", "127.0.0.1:8000", "--log-level", "error"},
			[]string{"CALLCTL_SIP_LISTEN=127.0.0.1:7000", "CALLCTL_LOG_LEVEL=info"}, func(c *config.Config) {
				c.SIP.Listen, c.Trunk.Address, c.Log.Level = "127.0.0.1:8000", "10.0.0.1:5060", "error"
			}},
		{"every setting flag", []string{"--sip=:5090", "--pbx=pbx:5062", "--api=127.0.0.1:9", "--rtp-ports=30000-30099", "--log-level=debug"}, nil,
			func(c *config.Config) {
				c.SIP.Listen, c.Trunk.Address, c.API.Listen, c.Media.RTPPorts, c.Log.Level = ":5090", "pbx:5062", "127.0.0.1:9", "30000-30099", "debug"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(tt.args, tt.environ)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			want := config.Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("loadConfig =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	bad := writeConfig(t, "sip:\n  listn: x\n")
	tests := []struct {
		name    string
		args    []string
		environ []string
		usage   bool   // a command-line mistake
		want    string // in the message
	}{
		{"unknown flag", []string{"--sipp", "x"}, nil, true, "sipp"},
		{"stray argument", []string{"extra"}, nil, true, `unexpected argument "extra"`},
		{"missing file", []string{"--config", "/nonexistent/callctl.yaml"}, nil, false, "/nonexistent/callctl.yaml"},
		{"unknown key in file", []string{"--config", bad}, nil, false, bad + `:2: unknown key "listn" in sip`},
		{"bad environment value", nil, []string{"CALLCTL_CALLS_MAX_SESSIONS=x"}, false, "CALLCTL_CALLS_MAX_SESSIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, tt.environ)
			if err == nil {
				t.Fatal("loadConfig succeeded, want an error")
			}
			var uerr *usageError
			if errors.As(err, &uerr) != tt.usage {
				t.Errorf("usage error = %v, want %v (%v)", !tt.usage, tt.usage, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	if _, err := loadConfig([]string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("loadConfig(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	bad := writeConfig(t, "media:\n  rtp_ports: 30000-20001\nlog:\n  level: loud\n")
	secret := writeConfig(t, "trunk:\n  username: alice\n  password: hunter2\n")
	const routeSecret = "route-secret-0123456789abcdef0123456789"
	cluster := []string{"CALLCTL_CLUSTER_EMBEDDED_LISTEN=127.0.0.1:1", "CALLCTL_CLUSTER_EMBEDDED_ROUTE_SECRET_FILE=" + writeConfig(t, routeSecret+"\n")}
	tests := []struct {
		name      string
		args      []string
		environ   []string
		code      int
		stdout    []string // substrings of stdout
		stderr    []string // substrings of stderr
		notStdout string
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"callctl " + version}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"callctl config check", "-rtp-ports LO-HI"}},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"Usage:"}},
		{name: "unknown command", args: []string{"srve"}, code: 2, stderr: []string{`unknown command "srve"`}},
		{name: "config without subcommand", args: []string{"config"}, code: 2, stderr: []string{"check, print or reload"}},
		{name: "config reload takes no argument", args: []string{"config", "reload", "extra"}, code: 2,
			stderr: []string{"config reload takes no arguments", "usage: callctl config reload [flags]"}},
		{name: "config reload needs a token", args: []string{"config", "reload", "--api-url", "http://127.0.0.1:1"}, code: 2, stderr: []string{"no API token"}},
		{name: "config reload -h", args: []string{"config", "reload", "-h"}, code: 0, stdout: []string{"Usage: callctl config reload [flags]", "SIGHUP", "-api-url"}},
		{name: "config reload cannot reach the API", args: []string{"config", "reload", "--api-url", "http://127.0.0.1:1", "--token", "t"}, code: 1,
			stderr: []string{"cannot reach the API"}},
		{name: "help lists config reload", args: []string{"help"}, code: 0, stdout: []string{"callctl config reload", "config.reload"}},
		{name: "check defaults", args: []string{"config", "check"}, code: 0, stdout: []string{"ok"}},
		{name: "check example", args: []string{"config", "check", "--config", "../../configs/callctl.yaml"}, code: 0, stdout: []string{"ok"}},
		{name: "check lists every problem", args: []string{"config", "check", "--config", bad}, code: 2,
			stderr: []string{"media.rtp_ports", "log.level", "allowed: debug, info, warn, error"}, notStdout: "ok"},
		{name: "check sees flags", args: []string{"config", "check", "--sip", "nohostport"}, code: 2, stderr: []string{"sip.listen"}},
		{name: "check bad flag", args: []string{"config", "check", "--nope"}, code: 2, stderr: []string{"-nope", "callctl -h"}},
		{name: "print redacts the password", args: []string{"config", "print", "--config", secret, "--pbx", "10.1.1.1:5060"}, code: 0,
			stdout: []string{"password: REDACTED", "username: alice", "address: 10.1.1.1:5060", "ring_timeout: 1m0s"}, notStdout: "hunter2"},
		{name: "print redacts an environment password", args: []string{"config", "print"}, environ: []string{"CALLCTL_TRUNK_PASSWORD=hunter2", "CALLCTL_TRUNK_USERNAME=bob"},
			code: 0, stdout: []string{"password: REDACTED"}, notStdout: "hunter2"},
		{name: "check refuses a cluster without a route secret", args: []string{"config", "check"}, environ: cluster[:1], code: 2,
			stderr: []string{"cluster.embedded.route_secret_file: empty while cluster.embedded.listen is set"}, notStdout: "ok"},
		{name: "serve refuses a cluster without a route secret", args: []string{"serve"}, environ: cluster[:1], code: 2,
			stderr: []string{"invalid configuration", "cluster.embedded.route_secret_file: empty while cluster.embedded.listen is set"}},
		{name: "check takes a route secret", args: []string{"config", "check"}, environ: cluster, code: 0, stdout: []string{"ok"}, notStdout: routeSecret},
		{name: "print names the route secret's file, not the secret", args: []string{"config", "print"}, environ: cluster, code: 0,
			stdout: []string{"route_secret_file: /"}, notStdout: routeSecret},
		{name: "serve refuses a bad config before starting", args: []string{"serve", "--config", bad}, code: 2, stderr: []string{"invalid configuration", "media.rtp_ports"}},
		{name: "serve by default", args: []string{"--log-level", "chatty"}, code: 2, stderr: []string{"log.level"}},
		{name: "serve bad file", args: []string{"--config", "/nonexistent.yaml"}, code: 2, stderr: []string{"/nonexistent.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, tt.environ, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout does not contain %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr.String())
				}
			}
			if tt.notStdout != "" && strings.Contains(stdout.String()+stderr.String(), tt.notStdout) {
				t.Errorf("output contains %q:\n%s%s", tt.notStdout, stdout.String(), stderr.String())
			}
		})
	}
}

// What config print writes is a config file that loads back to the same
// configuration (password aside).
func TestConfigPrintOutputLoadsBack(t *testing.T) {
	environ := []string{"CALLCTL_SIP_ALLOW=::1/128,10.0.0.0/8", "CALLCTL_CALLS_RING_TIMEOUT=90s", "CALLCTL_SIP_USER_AGENT=x: y"}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "print"}, environ, &stdout, &stderr); code != 0 {
		t.Fatalf("config print: exit %d: %s", code, stderr.String())
	}
	want, err := loadConfig(nil, environ)
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadConfig([]string{"--config", writeConfig(t, stdout.String())}, nil)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, stdout.String())
	}
	if len(got.Routes) == 0 {
		got.Routes = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded back\n%+v\nwant\n%+v", got, want)
	}
}

func TestUnknownEnvNamesMisspeltVariablesOnly(t *testing.T) {
	got := unknownEnv([]string{
		"CALLCTL_SIP_LISTEN=x", "CALLCTL_SIP_LISTN=x", "CALLCTL_CONFIG=f", "CALLCTL_ADMIN_TOKEN=secret", "HOME=/root",
		"CALLCTL_TOKEN=secret", "CALLCTL_API_URL=http://127.0.0.1:8080", // read by the client commands
	})
	if !reflect.DeepEqual(got, []string{"CALLCTL_SIP_LISTN"}) {
		t.Errorf("unknownEnv = %v, want [CALLCTL_SIP_LISTN]", got)
	}
}
