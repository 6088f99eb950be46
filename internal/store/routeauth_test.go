package store

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/test/peers"
)

// Two embedded servers with the same route secret are one store; a server
// with another secret, or with none, is refused on the route port and the
// cluster never has a route to it. Nothing logged holds the secret.
func TestRoutesWithoutTheSecretAreRefused(t *testing.T) {
	stores, logs, addrs := openCluster(t, 2, 1, nil)
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	writeAndReadAcross(t, stores[0], stores[1], "before")

	t.Run("wrong secret", func(t *testing.T) {
		clearLogs(t, logs)
		in := startIntruder(t, "wrong-secret", "another-secret-of-32-characters-or-more", addrs, nil)
		in.refused(t, stores, logs, "Authentication Failure")
	})
	t.Run("no secret", func(t *testing.T) {
		clearLogs(t, logs)
		in := startIntruder(t, "no-secret", "", addrs, nil)
		in.refused(t, stores, logs, "Authentication Failure")
	})
	// The cluster is whole after the attempts.
	writeAndReadAcross(t, stores[1], stores[0], "after")
	clearLogs(t, logs) // and none of what they logged holds the secret
}

// The route port says it wants credentials, and a CONNECT without the
// right ones gets NATS's authorization error and the connection closed,
// before the peer can route a single message.
func TestRoutePortAnswersAWrongPasswordWithAuthorizationViolation(t *testing.T) {
	stores, _, addrs := openCluster(t, 2, 1, nil)
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	for _, connect := range []string{
		`CONNECT {"verbose":false,"name":"intruder","cluster":"test"}`,
		`CONNECT {"verbose":false,"user":"callctl","pass":"guess","name":"intruder","cluster":"test"}`,
	} {
		c, err := net.DialTimeout("tcp", addrs[0], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		info, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"auth_required":true`) {
			t.Fatalf("route port's greeting %q (%v); want INFO with auth_required true", info, err)
		}
		if strings.Contains(info, testRouteSecret) {
			t.Fatalf("route port's greeting %q holds the secret", info)
		}
		if _, err := c.Write([]byte(connect + "\r\nPING\r\n")); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // closed by the server
			}
			got = append(got, strings.TrimSpace(line))
		}
		c.Close()
		if len(got) == 0 || got[0] != "-ERR 'Authorization Violation'" || len(got) > 1 {
			t.Errorf("%s: answered %q; want only -ERR 'Authorization Violation', then the connection closed", connect, got)
		}
	}
}

// With cluster.embedded.tls the routes are TLS, verified both ways: two
// nodes with certificates of the cluster's CA are one store; a server with
// the right secret but a certificate of another CA is refused.
func TestRouteTLSAdmitsOnlyCertificatesOfTheClustersCA(t *testing.T) {
	ca := peers.NewTestCA(t, "routes")
	other := peers.NewTestCA(t, "elsewhere")
	stores, logs, addrs := openCluster(t, 2, 1, func(i int, o *Options) {
		leaf := ca.Issue(t, o.Node, int64(i+1))
		o.RouteCertFile, o.RouteKeyFile, o.RouteCAFile = leaf.CertFile, leaf.KeyFile, ca.CAFile
	})
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	writeAndReadAcross(t, stores[0], stores[1], "k")
	// The port speaks TLS from the first byte: its INFO comes only after
	// a handshake with a certificate of the CA.
	mine := ca.Issue(t, "probe", 5)
	if info := tlsRouteGreeting(t, addrs[0], mine, ca.CAFile); !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("route port's greeting over TLS %q; want tls_required true", info)
	}

	leaf := other.Issue(t, "stranger", 9)
	clearLogs(t, logs)
	in := startIntruder(t, "stranger", testRouteSecret, addrs,
		&Options{RouteCertFile: leaf.CertFile, RouteKeyFile: leaf.KeyFile, RouteCAFile: other.CAFile})
	in.refused(t, stores, logs, "TLS route handshake error")
}

// routeTLS refuses a half configuration: a route that verified nothing
// would take any peer, one with no certificate could not be verified.
func TestRouteTLSNeedsACertificateAndACA(t *testing.T) {
	ca := peers.NewTestCA(t, "routes")
	leaf := ca.Issue(t, "n1", 1)
	for _, tt := range []struct {
		opts Options
		key  string
	}{
		{Options{RouteCertFile: leaf.CertFile, RouteKeyFile: leaf.KeyFile}, "cluster.embedded.tls.ca_file"},
		{Options{RouteCAFile: ca.CAFile}, "cluster.embedded.tls.cert_file"},
	} {
		if _, err := routeTLS(tt.opts); err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("routeTLS(%+v): %v; want an error naming %s", tt.opts, err, tt.key)
		}
	}
}

// tlsRouteGreeting is the INFO line a TLS route port sends a connection
// that completed the handshake with leaf's certificate.
func tlsRouteGreeting(t *testing.T, addr string, leaf peers.Leaf, caFile string) string {
	t.Helper()
	tc, err := routeTLS(Options{RouteCertFile: leaf.CertFile, RouteKeyFile: leaf.KeyFile, RouteCAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	tc.ServerName = "127.0.0.1"
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc)
	if err != nil {
		t.Fatalf("TLS to route port %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	info, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("route port %s: %v", addr, err)
	}
	return info
}
