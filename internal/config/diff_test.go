package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDiffNamesEachChangedKey(t *testing.T) {
	old := Default()
	if got := Diff(old, Default()); len(got) != 0 {
		t.Fatalf("Diff of two defaults = %q; want none", got)
	}
	n := Default()
	n.SIP.Allow = []string{"10.0.0.0/8"}
	n.Media.RTPPorts = "30000-30099"
	n.Calls.RingTimeout = time.Second
	n.Routes = []Route{{Match: "9.*", Target: "sip:{number}@192.0.2.1"}}
	n.Clients = []Client{{Name: "a"}}
	n.SIP.TLS.CertFile = "x.pem"
	n.Calls.SessionTimerUnit = time.Millisecond // no key: not a difference
	want := []string{"sip.allow", "sip.tls.cert_file", "routes", "calls.ring_timeout", "media.rtp_ports", "clients"}
	if got := Diff(old, n); !slices.Equal(got, want) {
		t.Errorf("Diff = %q; want %q", got, want)
	}
	// An empty list and an absent one are the same.
	a, b := Default(), Default()
	a.Routes, b.Routes = nil, []Route{}
	if got := Diff(a, b); len(got) != 0 {
		t.Errorf("Diff of nil and empty routes = %q; want none", got)
	}
}

func TestCheckReloadRefusesRestartOnlyKeysNamingEach(t *testing.T) {
	old := Default()
	ok := Default()
	ok.Clients = []Client{{Name: "a"}}
	ok.Roles = []Role{{Name: "r"}}
	ok.SIP.Allow = []string{"10.0.0.0/8"}
	ok.SIP.Refused = "403"
	ok.SIP.Scanners = []string{"x"}
	ok.Routes = []Route{{Match: "1", Target: "sip:1@192.0.2.1"}}
	ok.Calls.TransferHosts = []string{"192.0.2.1"}
	ok.Calls.MaxSessions = 5
	ok.Calls.MaxPerSource = 2
	ok.SIP.Flood.Rate = 7
	changed, err := CheckReload(old, ok)
	if err != nil {
		t.Fatalf("CheckReload of reloadable changes: %v", err)
	}
	if len(changed) != 10 {
		t.Errorf("changed = %q; want the 10 reloadable keys", changed)
	}

	bad := ok
	bad.SIP.Listen = "127.0.0.1:5999"
	bad.Media.RTPPorts = "30000-30099"
	bad.Audit.Path = "other.db"
	bad.SIP.UserAgent = "x"
	_, err = CheckReload(old, bad)
	var re *RestartError
	if !errors.As(err, &re) {
		t.Fatalf("CheckReload with restart-only keys: %v; want a *RestartError", err)
	}
	if want := []string{"sip.listen", "sip.user_agent", "media.rtp_ports", "audit.path"}; !slices.Equal(re.Keys, want) {
		t.Errorf("RestartError.Keys = %q; want %q (not the reloadable ones)", re.Keys, want)
	}
	for _, w := range []string{"sip.listen", "media.rtp_ports", "audit.path", "restart", "nothing was changed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestReloadableKeysAreRealKeys(t *testing.T) {
	var cfg Config
	keys := map[string]bool{}
	for _, l := range leaves(&cfg) {
		keys[l.key] = true
	}
	for _, k := range []string{"clients", "roles", "routes"} {
		keys[k] = true // lists of sections have no leaf
	}
	for _, k := range ReloadableKeys() {
		section := false
		for leaf := range keys {
			section = section || strings.HasPrefix(leaf, k+".")
		}
		if !keys[k] && !section {
			t.Errorf("reloadable key %q is not a configuration key or section", k)
		}
		if !Reloadable(k) {
			t.Errorf("Reloadable(%q) = false", k)
		}
	}
	if Reloadable("sip.allowed") || Reloadable("routesx") {
		t.Error("Reloadable matches a key only by prefix")
	}
}

func TestCheckReloadRefusesClusterChanges(t *testing.T) {
	n := Default()
	n.Cluster.Node = "other-node"
	n.Cluster.Store = "off"
	_, err := CheckReload(Default(), n)
	var re *RestartError
	if !errors.As(err, &re) || !slices.Equal(re.Keys, []string{"cluster.node", "cluster.store"}) {
		t.Fatalf("CheckReload changing the cluster section: %v; want a RestartError naming cluster.node and cluster.store", err)
	}
}
