package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callctl/callctl/test/peers"
)

func TestValidateSIPTLS(t *testing.T) {
	dir := t.TempDir()
	ca := peers.NewTestCA(t, "config-test")
	a, b := ca.Issue(t, "a", 1), ca.Issue(t, "b", 2)
	cert, key, otherKey := a.CertFile, a.KeyFile, b.KeyFile
	missing := filepath.Join(dir, "missing.pem")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := func(c *Config) {
		c.SIP.TLS.Listen = "127.0.0.1:5071"
		c.SIP.TLS.CertFile, c.SIP.TLS.KeyFile, c.SIP.TLS.CAFile = cert, key, ca.CAFile
	}
	good := []struct {
		name   string
		mutate func(*Config)
	}{
		{"listener", ok},
		{"tls 1.3, client certificates", func(c *Config) { ok(c); c.SIP.TLS.MinVersion = "1.3"; c.SIP.TLS.ClientAuth = "require" }},
		{"tls trunk, no listener, system roots", func(c *Config) { c.Trunk.Transport = "tls" }},
		{"tls route", func(c *Config) { c.Routes = []Route{{Match: "1", Target: "sip:1@h", Transport: "tls"}} }},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
	bad := []struct {
		name   string
		mutate func(*Config)
		key    string
		msg    string
	}{
		{"listen without cert", func(c *Config) { c.SIP.TLS.Listen = "127.0.0.1:5071"; c.SIP.TLS.KeyFile = key }, "sip.tls.cert_file", "empty"},
		{"bad listen", func(c *Config) { ok(c); c.SIP.TLS.Listen = "5071" }, "sip.tls.listen", "host:port"},
		{"cert unreadable", func(c *Config) { ok(c); c.SIP.TLS.CertFile = missing }, "sip.tls.cert_file", "no such file"},
		{"key unreadable", func(c *Config) { ok(c); c.SIP.TLS.KeyFile = missing }, "sip.tls.key_file", "no such file"},
		{"key of another certificate", func(c *Config) { ok(c); c.SIP.TLS.KeyFile = otherKey }, "sip.tls.key_file", "does not match"},
		{"key file holds the certificate", func(c *Config) { ok(c); c.SIP.TLS.KeyFile = cert }, "sip.tls.key_file", "rather than a key"},
		{"cert file holds the key", func(c *Config) { ok(c); c.SIP.TLS.CertFile = key }, "sip.tls.cert_file", "no PEM CERTIFICATE"},
		{"cert not PEM", func(c *Config) { ok(c); c.SIP.TLS.CertFile = junk }, "sip.tls.cert_file", "PEM"},
		{"ca not PEM", func(c *Config) { ok(c); c.SIP.TLS.CAFile = junk }, "sip.tls.ca_file", "no PEM certificate"},
		{"min version", func(c *Config) { ok(c); c.SIP.TLS.MinVersion = "1.1" }, "sip.tls.min_version", "allowed: 1.2, 1.3"},
		{"client auth", func(c *Config) { ok(c); c.SIP.TLS.ClientAuth = "optional" }, "sip.tls.client_auth", "allowed: none, require"},
		{"client auth without ca", func(c *Config) { ok(c); c.SIP.TLS.CAFile = ""; c.SIP.TLS.ClientAuth = "require" }, "sip.tls.ca_file", "client_auth"},
		{"tls in sip.transports", func(c *Config) { c.SIP.Transports = []string{"udp", "tls"} }, "sip.transports[1]", "allowed: udp, tcp"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Validate() = %v; want an error for %s saying %q", err, tt.key, tt.msg)
			}
		})
	}
}
