package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/callctl/callctl/test/peers"
)

const testRouteSecret = "0123456789abcdef0123456789abcdef"

// A cluster node (cluster.embedded.listen set) needs a route secret of its
// own; the routes' TLS files come all three or not at all; none of it is
// allowed on a lone server. Every error names its key and never what the
// secret file holds.
func TestValidateEmbeddedRouteAuth(t *testing.T) {
	secret := writeFile(t, testRouteSecret+"\n")
	short := writeFile(t, "hunter2-hunter2\n")
	twoLines := writeFile(t, testRouteSecret+"\n"+testRouteSecret+"\n")
	empty := writeFile(t, "\n")
	missing := filepath.Join(t.TempDir(), "missing")
	ca := peers.NewTestCA(t, "routes")
	leaf, other := ca.Issue(t, "n1", 1), ca.Issue(t, "n2", 2)
	junk := writeFile(t, "not pem")
	node := func(c *Config) {
		c.Cluster.Embedded.Listen = "127.0.0.1:6222"
		c.Cluster.Embedded.Routes = []string{"127.0.0.2:6222"}
		c.Cluster.Embedded.RouteSecretFile = secret
	}
	withTLS := func(c *Config) {
		node(c)
		c.Cluster.Embedded.TLS = RouteTLS{CertFile: leaf.CertFile, KeyFile: leaf.KeyFile, CAFile: ca.CAFile}
	}
	good := []struct {
		name   string
		mutate func(*Config)
	}{
		{"lone server", func(c *Config) {}},
		{"cluster node with a secret", node},
		{"cluster node with a secret and TLS", withTLS},
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
		{"cluster node without a secret", func(c *Config) { node(c); c.Cluster.Embedded.RouteSecretFile = "" },
			"cluster.embedded.route_secret_file", "empty while cluster.embedded.listen is set"},
		{"secret file missing", func(c *Config) { node(c); c.Cluster.Embedded.RouteSecretFile = missing },
			"cluster.embedded.route_secret_file", "no such file"},
		{"secret too short", func(c *Config) { node(c); c.Cluster.Embedded.RouteSecretFile = short },
			"cluster.embedded.route_secret_file", "holds 15 characters; want a secret of at least 32"},
		{"secret file empty", func(c *Config) { node(c); c.Cluster.Embedded.RouteSecretFile = empty },
			"cluster.embedded.route_secret_file", "holds 0 characters"},
		{"secret on two lines", func(c *Config) { node(c); c.Cluster.Embedded.RouteSecretFile = twoLines },
			"cluster.embedded.route_secret_file", "more than one line"},
		{"secret on a lone server", func(c *Config) { c.Cluster.Embedded.RouteSecretFile = secret },
			"cluster.embedded.route_secret_file", "set while cluster.embedded.listen is empty"},
		{"tls on a lone server", func(c *Config) { c.Cluster.Embedded.TLS.CAFile = ca.CAFile },
			"cluster.embedded.tls.ca_file", "set while cluster.embedded.listen is empty"},
		{"tls without a CA", func(c *Config) { withTLS(c); c.Cluster.Embedded.TLS.CAFile = "" },
			"cluster.embedded.tls.ca_file", "verify each other both ways"},
		{"tls without a key", func(c *Config) { withTLS(c); c.Cluster.Embedded.TLS.KeyFile = "" },
			"cluster.embedded.tls.key_file", "empty while other cluster.embedded.tls files are set"},
		{"tls CA alone", func(c *Config) { node(c); c.Cluster.Embedded.TLS.CAFile = ca.CAFile },
			"cluster.embedded.tls.cert_file", "empty while other cluster.embedded.tls files are set"},
		{"tls key of another certificate", func(c *Config) { withTLS(c); c.Cluster.Embedded.TLS.KeyFile = other.KeyFile },
			"cluster.embedded.tls.key_file", "does not match"},
		{"tls certificate missing", func(c *Config) { withTLS(c); c.Cluster.Embedded.TLS.CertFile = missing },
			"cluster.embedded.tls.cert_file", "no such file"},
		{"tls CA not PEM", func(c *Config) { withTLS(c); c.Cluster.Embedded.TLS.CAFile = junk },
			"cluster.embedded.tls.ca_file", "no PEM certificate"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Validate() = %v; want an error for %s saying %q", err, tt.key, tt.msg)
			}
			for _, s := range []string{testRouteSecret, "hunter2"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %v; it shows the secret file's content", err)
				}
			}
		})
	}
}

// RouteSecret is the file's one line without the white space around it,
// so a secret written by echo or an editor is the same on every node.
func TestRouteSecretTrimsTheLine(t *testing.T) {
	for _, content := range []string{testRouteSecret, testRouteSecret + "\n", "  " + testRouteSecret + " \r\n"} {
		e := Embedded{RouteSecretFile: writeFile(t, content)}
		got, err := e.RouteSecret()
		if err != nil || got != testRouteSecret {
			t.Errorf("RouteSecret() of %q = %q, %v; want %q", content, got, err, testRouteSecret)
		}
	}
}

// Each new key has its CALLCTL_CLUSTER_EMBEDDED_* variable.
func TestRouteAuthKeysHaveEnvironmentVariables(t *testing.T) {
	cfg := Default()
	err := ApplyEnv(&cfg, []string{
		"CALLCTL_CLUSTER_EMBEDDED_ROUTE_SECRET_FILE=/run/secrets/route",
		"CALLCTL_CLUSTER_EMBEDDED_TLS_CERT_FILE=/etc/callctl/node.pem",
		"CALLCTL_CLUSTER_EMBEDDED_TLS_KEY_FILE=/etc/callctl/node.key",
		"CALLCTL_CLUSTER_EMBEDDED_TLS_CA_FILE=/etc/callctl/ca.pem",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Cluster.Embedded
	if e.RouteSecretFile != "/run/secrets/route" || e.TLS != (RouteTLS{"/etc/callctl/node.pem", "/etc/callctl/node.key", "/etc/callctl/ca.pem"}) {
		t.Errorf("after the variables: %+v", e)
	}
	if !slices.Contains(EnvVars(), "CALLCTL_CLUSTER_EMBEDDED_ROUTE_SECRET_FILE") {
		t.Errorf("EnvVars() lacks CALLCTL_CLUSTER_EMBEDDED_ROUTE_SECRET_FILE")
	}
}
