package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ClusterStores are the values of cluster.store.
var ClusterStores = []string{"embedded", "nats", "off"}

// nodeName is what a node may be called: it becomes a NATS key and a
// server name, so letters, digits, '-', '_' and '.' only (not at the ends).
var nodeName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$`)

// NodeName is cluster.node, or the host name when it is empty (cut to the
// characters a node name may have).
func (c Config) NodeName() string {
	if c.Cluster.Node != "" {
		return c.Cluster.Node
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "callctl"
	}
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, h)
	if len(h) > 64 {
		h = h[:64]
	}
	h = strings.Trim(h, "-_.")
	if h == "" {
		return "callctl"
	}
	return h
}

// StoreDir is the embedded NATS server's JetStream directory:
// cluster.data_dir, or "callctl-nats" beside audit.path.
func (c Config) StoreDir() string {
	if c.Cluster.DataDir != "" {
		return c.Cluster.DataDir
	}
	return filepath.Join(filepath.Dir(c.Audit.Path), "callctl-nats")
}

// cluster checks the cluster section.
func (v *validator) cluster(c Config) {
	cl := c.Cluster
	if cl.Node != "" && !nodeName.MatchString(cl.Node) {
		v.add("cluster.node", "%q; want 1-64 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", cl.Node)
	}
	if !oneOf(cl.Store, ClusterStores) {
		v.add("cluster.store", "%q is not a store (allowed: %s)", cl.Store, strings.Join(ClusterStores, ", "))
	}
	switch cl.Replicas {
	case 1, 3, 5:
	default:
		v.add("cluster.replicas", "%d; must be 1, 3 or 5 (JetStream replicas)", cl.Replicas)
	}
	if cl.Heartbeat < 100*time.Millisecond || cl.Heartbeat > time.Minute {
		v.add("cluster.heartbeat", "%s; must be between 100ms and 1m", cl.Heartbeat)
	}
	if cl.NodeTimeout < 3*cl.Heartbeat {
		v.add("cluster.node_timeout", "%s; must be at least 3 × cluster.heartbeat (%s), so one lost heartbeat is not a dead node", cl.NodeTimeout, 3*cl.Heartbeat)
	}
	v.embedded(c)
	n := cl.NATS
	if cl.Store != "nats" {
		if n.URL != "" {
			v.add("cluster.nats.url", "set while cluster.store is %q; it is used only with store: nats", cl.Store)
		}
		return
	}
	if n.URL == "" {
		v.add("cluster.nats.url", "empty while cluster.store is nats; give the NATS servers (e.g. nats://10.0.0.5:4222)")
	}
	for _, u := range strings.Split(n.URL, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || !oneOf(p.Scheme, []string{"nats", "tls"}) {
			v.add("cluster.nats.url", "%q; want nats://HOST:PORT or tls://HOST:PORT, comma-separated", u)
		}
	}
	for _, f := range []struct{ key, path string }{
		{"cluster.nats.credentials", n.Credentials}, {"cluster.nats.ca_file", n.CAFile},
		{"cluster.nats.cert_file", n.CertFile}, {"cluster.nats.key_file", n.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			v.add(f.key, "%v", err)
		}
	}
	if (n.CertFile == "") != (n.KeyFile == "") {
		v.add("cluster.nats.cert_file", "cert_file and key_file go together; set both or neither")
	}
}

// MinRouteSecret is the shortest cluster.embedded.route_secret_file
// content accepted: 32 characters, what `openssl rand -hex 16` prints, so
// the secret cannot be guessed over the route port.
const MinRouteSecret = 32

// RouteSecret reads cluster.embedded.route_secret_file: its one line, white
// space around it dropped (the newline an editor or echo leaves is not part
// of the secret). The error says what is wrong with the file, never what it
// holds.
func (e Embedded) RouteSecret() (string, error) {
	data, err := os.ReadFile(e.RouteSecretFile)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(data))
	switch {
	case strings.ContainsAny(secret, "\r\n"):
		return "", fmt.Errorf("%s holds more than one line; want the secret alone on one line", e.RouteSecretFile)
	case len(secret) < MinRouteSecret:
		return "", fmt.Errorf("%s holds %d characters; want a secret of at least %d (e.g. openssl rand -hex 32 > %s)",
			e.RouteSecretFile, len(secret), MinRouteSecret, e.RouteSecretFile)
	}
	return secret, nil
}

// embedded checks cluster.embedded.
func (v *validator) embedded(c Config) {
	e := c.Cluster.Embedded
	if !nodeName.MatchString(e.Name) {
		v.add("cluster.embedded.name", "%q; want 1-64 letters, digits, '-', '_' or '.' (the NATS cluster's name)", e.Name)
	}
	if e.Listen == "" {
		for _, f := range []struct{ key, val string }{
			{"cluster.embedded.route_secret_file", e.RouteSecretFile},
			{"cluster.embedded.tls.cert_file", e.TLS.CertFile},
			{"cluster.embedded.tls.key_file", e.TLS.KeyFile},
			{"cluster.embedded.tls.ca_file", e.TLS.CAFile},
		} {
			if f.val != "" {
				v.add(f.key, "set while cluster.embedded.listen is empty; it guards the routes of a server in a cluster")
			}
		}
		if len(e.Routes) > 0 {
			v.add("cluster.embedded.routes", "set while cluster.embedded.listen is empty; a server in a cluster listens for the others")
		}
		return
	}
	if c.Cluster.Store != "embedded" {
		v.add("cluster.embedded.listen", "set while cluster.store is %q; it is used only with store: embedded", c.Cluster.Store)
	}
	v.listenAddr("cluster.embedded.listen", e.Listen)
	for i, r := range e.Routes {
		if _, _, err := net.SplitHostPort(r); err != nil {
			v.add(fmt.Sprintf("cluster.embedded.routes[%d]", i), "%q; want HOST:PORT of another node's cluster.embedded.listen", r)
		}
	}
	// Safe by default: an open route port lets anyone join the NATS
	// cluster and read and write every call record.
	if e.RouteSecretFile == "" {
		v.add("cluster.embedded.route_secret_file", "empty while cluster.embedded.listen is set; a cluster's route port must not be open to anyone: "+
			"give a file holding a shared secret of at least %d characters, the same on every node (e.g. openssl rand -hex 32)", MinRouteSecret)
	} else if _, err := e.RouteSecret(); err != nil {
		v.add("cluster.embedded.route_secret_file", "%v", err)
	}
	v.routeTLS(e.TLS)
}

// routeTLS checks cluster.embedded.tls: all three files or none, since
// every route is verified both ways.
func (v *validator) routeTLS(t RouteTLS) {
	if t == (RouteTLS{}) {
		return
	}
	for _, f := range []struct{ key, val, what string }{
		{"cluster.embedded.tls.cert_file", t.CertFile, "this node's PEM certificate"},
		{"cluster.embedded.tls.key_file", t.KeyFile, "the PEM private key of cluster.embedded.tls.cert_file"},
		{"cluster.embedded.tls.ca_file", t.CAFile, "the PEM CAs that sign every node's certificate"},
	} {
		if f.val == "" {
			v.add(f.key, "empty while other cluster.embedded.tls files are set; routes verify each other both ways: give %s (or set none of the three)", f.what)
		}
	}
	if t.CertFile != "" && t.KeyFile != "" {
		v.keyPair("cluster.embedded.tls", t.CertFile, t.KeyFile)
	}
	if t.CAFile != "" {
		v.caFile("cluster.embedded.tls.ca_file", t.CAFile)
	}
}
