package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
		so.Cluster = server.ClusterOpts{Name: opts.ClusterName, Host: host}
		if so.Cluster.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("store: cluster.embedded.listen %q: %w", opts.ClusterListen, err)
		}
		var urls []string
		for _, r := range opts.Routes {
			urls = append(urls, "nats-route://"+r)
		}
		so.Routes = server.RoutesFromStr(strings.Join(urls, ","))
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

// natsLogger writes the NATS server's log through zap: its notices at
// debug (it is chatty at start), its warnings and errors as they are.
type natsLogger struct{ log *zap.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  {}
