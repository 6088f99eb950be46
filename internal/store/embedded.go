package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// Limits of the embedded server's JetStream: call records are small (a few
// KiB each), so these bound a runaway, not the expected use.
const (
	embeddedMaxMemory = 64 << 20
	embeddedMaxStore  = 1 << 30
)

// clientToken guards the embedded server's loopback client port (in a
// cluster; alone it has none): random per process.
var clientToken = func() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// startEmbedded runs an in-process NATS server with JetStream on
// opts.Dir. It listens on no port: callctl reaches it in-process.
func startEmbedded(opts Options, log *zap.Logger) (*server.Server, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: cluster.data_dir: %w", err)
	}
	so := &server.Options{
		ServerName:         opts.Node,
		DontListen:         true,
		JetStream:          true,
		StoreDir:           opts.Dir,
		JetStreamMaxMemory: embeddedMaxMemory,
		JetStreamMaxStore:  embeddedMaxStore,
		NoSigs:             true, // callctl owns its signals
	}
	if opts.ClusterListen != "" {
		host, port, err := net.SplitHostPort(opts.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("store: cluster.embedded.listen %q: %w", opts.ClusterListen, err)
		}
		if opts.RouteSecret == "" {
			return nil, errors.New("store: cluster.embedded.route_secret_file: no route secret; a cluster's route port must not be open to anyone")
		}
		user, pass := routeCredentials(opts.RouteSecret)
		so.Cluster = server.ClusterOpts{Name: opts.ClusterName, Host: host, Username: user, Password: pass}
		if so.Cluster.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("store: cluster.embedded.listen %q: %w", opts.ClusterListen, err)
		}
		if so.Cluster.TLSConfig, err = routeTLS(opts); err != nil {
			return nil, err
		}
		so.Cluster.TLSTimeout = routeTLSTimeout.Seconds()
		// The routes this server dials carry the credentials in their
		// URLs; those it learns from the others (gossip) get them from
		// Cluster.Username and Password.
		for _, r := range opts.Routes {
			so.Routes = append(so.Routes, &url.URL{Scheme: "nats-route", User: url.UserPassword(user, pass), Host: r})
		}
		// A server in a cluster needs a client listener (nats-server
		// starts routing only once it listens): loopback, an ephemeral
		// port, and a token only this process knows.
		so.DontListen = false
		so.Host, so.Port = "127.0.0.1", server.RANDOM_PORT
		so.Authorization = clientToken
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("store: embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log.Named("nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("store: embedded NATS server (JetStream in %s) not ready within 10s", opts.Dir)
	}
	return srv, nil
}

// routeTLSTimeout bounds a route's TLS handshake: nats-server's default
// (2 s) is short for a loaded machine, and a route that fails is retried.
const routeTLSTimeout = 5 * time.Second

// routeCredentials are the user and password a route presents (and a
// server requires of the routes it takes), derived from the shared secret
// rather than the secret itself: nats-server takes a password that begins
// "$2" for a bcrypt hash, and the derived one is plain hex, safe in a URL.
func routeCredentials(secret string) (user, pass string) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("callctl NATS route"))
	return "callctl", hex.EncodeToString(mac.Sum(nil))
}

// routeTLS is the routes' TLS configuration, nil without the files. Each
// server both dials and takes routes, so the CA verifies either side and a
// peer without a certificate signed by it is refused (as nats-server does
// for a cluster's tls block).
func routeTLS(opts Options) (*tls.Config, error) {
	if opts.RouteCertFile == "" && opts.RouteKeyFile == "" && opts.RouteCAFile == "" {
		return nil, nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: opts.RouteCertFile, KeyFile: opts.RouteKeyFile, CaFile: opts.RouteCAFile, Verify: true,
	})
	if err != nil {
		return nil, fmt.Errorf("store: cluster.embedded.tls: %w", err)
	}
	switch {
	case len(tc.Certificates) == 0:
		return nil, errors.New("store: cluster.embedded.tls.cert_file: empty; every node presents its certificate on its routes")
	case tc.ClientCAs == nil:
		return nil, errors.New("store: cluster.embedded.tls.ca_file: empty; routes verify each other both ways")
	}
	tc.RootCAs = tc.ClientCAs
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	return tc, nil
}

// natsLogger writes the NATS server's log through zap: its notices at
// debug (it is chatty at start), its warnings and errors as they are.
type natsLogger struct{ log *zap.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  {}
