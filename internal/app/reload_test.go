package app

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
)

// testApp is an App on loopback ports of the system's choosing whose
// reloads read *next.
func testApp(t *testing.T) (*App, *config.Config, *observer.ObservedLogs) {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Media.RTPPorts = "41000-41019"
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = "app-reload-test-admin"
	cfg.Cluster.Store = "off" // no live-call store: not what this test is about
	next := cfg
	core, logs := observer.New(zapcore.InfoLevel)
	a, err := NewWithOptions(cfg, zap.New(core), Options{Load: func() (config.Config, error) { return next, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.agent.Close()
		a.agent.Wait()
		a.listen.Close()
		_ = a.store.Close()
		a.apiLn.Close()
	})
	return a, &next, logs
}

// A reload switches routes and the transfer policy, the clients and the
// limits together, logs what changed without a token or hash, and counts
// itself; a later reload that fails changes none of it.
func TestReloadAppliesWholeOrNotAtAll(t *testing.T) {
	a, next, logs := testApp(t)
	token, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.engine.Targets().Check("target", "sip:2001@192.0.2.50"); err == nil {
		t.Fatal("192.0.2.50 is an allowed transfer host before the reload")
	}
	next.Clients = []config.Client{{Name: "sup", TokenHash: hash, Privileges: []string{"sessions.view"}}}
	next.Routes = []config.Route{{Match: `9\d+`, Target: "sip:{number}@192.0.2.50:5060"}}
	next.Calls.MaxSessions = 3
	res, err := a.Reload()
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if res.Summary != "clients: +1 -0 ~0; routes; calls.max_sessions" {
		t.Errorf("summary %q", res.Summary)
	}
	if _, err := a.engine.Targets().Check("target", "sip:2001@192.0.2.50"); err != nil {
		t.Errorf("after the reload the new route's host is no transfer host: %v", err)
	}
	if u, err := a.engine.Targets().Check("target", "9123"); err != nil || u.Number != "9123" {
		t.Errorf("number target after the reload: %v %v", u, err)
	}
	if c, err := a.auth.Authenticate(token, netipLoopback); err != nil || c.Name != "sup" {
		t.Fatalf("the added client: %v, %v", c, err)
	}

	// Broken: a bad route and another client. Nothing of it may apply.
	other, otherHash, _ := auth.NewToken()
	next.Clients = append(next.Clients, config.Client{Name: "other", TokenHash: otherHash})
	next.Routes = []config.Route{{Match: "(", Target: "sip:{number}@192.0.2.60"}}
	if _, err := a.Reload(); err == nil || !strings.Contains(err.Error(), "routes[0].match") {
		t.Fatalf("Reload with a bad route: %v; want an error naming routes[0].match", err)
	}
	// Restart-only: media.rtp_ports.
	next.Routes = nil
	next.Media.RTPPorts = "42000-42019"
	_, err = a.Reload()
	var re *config.RestartError
	if !errors.As(err, &re) || len(re.Keys) != 1 || re.Keys[0] != "media.rtp_ports" || !IsRestartRequired(err) {
		t.Fatalf("Reload changing media.rtp_ports: %v; want a RestartError naming it", err)
	}
	if _, err := a.auth.Authenticate(other, netipLoopback); err == nil {
		t.Error("a client of a refused reload authenticates")
	}
	if _, err := a.engine.Targets().Check("target", "sip:2001@192.0.2.50"); err != nil {
		t.Errorf("a refused reload changed the transfer policy: %v", err)
	}
	if got := a.ConfigReloads(); got["ok"] != 1 || got["refused"] != 2 {
		t.Errorf("ConfigReloads = %v; want ok 1, refused 2", got)
	}
	if n := logs.FilterMessage("configuration reloaded").Len(); n != 1 {
		t.Errorf("%d reloaded lines; want 1", n)
	}
	if n := logs.FilterMessage("configuration not reloaded: refused, nothing changed, the previous one stays in use").Len(); n != 2 {
		t.Errorf("%d refusal lines; want 2", n)
	}
	for _, e := range logs.All() {
		line := e.Message + " " + strings.Join(fieldsOf(e), " ")
		for _, secret := range []string{token, hash, other, otherHash} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds a token or hash: %s", line)
			}
		}
	}
}

// netipLoopback is the source of the test's authentications.
var netipLoopback = netip.MustParseAddr("127.0.0.1")

func fieldsOf(e observer.LoggedEntry) []string {
	var out []string
	for k, v := range e.ContextMap() {
		out = append(out, k, fmt.Sprint(v))
	}
	return out
}
