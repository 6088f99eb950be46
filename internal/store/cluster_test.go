package store

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// testRouteSecret is the route secret of the test clusters.
const testRouteSecret = "0123456789abcdef0123456789abcdef-test"

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// observedLogger writes to t and keeps every entry (debug and up) for the
// test to read.
func observedLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, core)
	})))
	return log, logs
}

// openCluster opens n embedded stores routed to each other, each with the
// test's route secret and then what node changes (nil: nothing). It
// returns them with each one's logs.
func openCluster(t *testing.T, n, replicas int, node func(i int, o *Options)) ([]*Store, []*observer.ObservedLogs, []string) {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freePort(t)
	}
	stores := make([]*Store, n)
	logs := make([]*observer.ObservedLogs, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range stores {
		var routes []string
		for j, a := range addrs {
			if j != i {
				routes = append(routes, a)
			}
		}
		o := Options{Node: fmt.Sprintf("n%d", i+1), Embedded: true, Dir: t.TempDir(), Replicas: replicas,
			ClusterListen: addrs[i], ClusterName: "test", Routes: routes, RouteSecret: testRouteSecret, NodeTimeout: 2 * time.Second}
		if node != nil {
			node(i, &o)
		}
		var log *zap.Logger
		log, logs[i] = observedLogger(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stores[i], errs[i] = Open(ctx, o, log)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, s := range stores {
				if s != nil {
					s.Close()
				}
			}
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	return stores, logs, addrs
}

// Three embedded servers routed to each other are one NATS cluster: a
// record written through one is read through another, and it survives the
// loss of the server it was written through (replicas 3).
func TestEmbeddedServersFormOneStore(t *testing.T) {
	stores, _, _ := openCluster(t, 3, 3, nil)
	defer func() {
		for _, s := range stores[1:] {
			s.Close()
		}
	}()
	// A node's entry written through one server is read through another.
	for i, s := range stores {
		bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Beat(bctx, fmt.Sprintf("n%d", i+1), []byte("{}")); err != nil {
			t.Fatalf("entry of n%d: %v", i+1, err)
		}
		bcancel()
	}
	w := stores[0].NewWriter(nil)
	w.Put("k", []byte("v"))
	w.Close(5 * time.Second)
	stores[0].Close()
	if got := records(t, stores[2]); got["k"] != "v" {
		t.Errorf("through node 3 after node 1 went: %v; want k=v", got)
	}
}

// An embedded server in a cluster with no route secret does not start: its
// route port would let anyone in.
func TestEmbeddedClusterServerWithoutRouteSecretDoesNotStart(t *testing.T) {
	_, err := Open(context.Background(), Options{Node: "n1", Embedded: true, Dir: t.TempDir(), Replicas: 1,
		ClusterListen: freePort(t), ClusterName: "test"}, zaptest.NewLogger(t))
	if err == nil || !strings.Contains(err.Error(), "cluster.embedded.route_secret_file") {
		t.Fatalf("Open without a route secret: %v; want an error naming cluster.embedded.route_secret_file", err)
	}
}

// writeAndReadAcross writes the record key=v through from and reads it
// back through to: the two are one store.
func writeAndReadAcross(t *testing.T, from, to *Store, key string) {
	t.Helper()
	w := from.NewWriter(nil)
	w.Put(key, []byte("v"))
	w.Close(5 * time.Second)
	if got := records(t, to); got[key] != "v" {
		t.Fatalf("record %s written through one node, read through the other: %v; want %s=v", key, got, key)
	}
}

// intruder is a NATS server that tries to join the cluster at routes.
type intruder struct {
	name string
	srv  *server.Server
}

// startIntruder runs a bare NATS server named name that routes to routes
// with the route credentials of secret (none when empty) and tlsOpts'
// files (none when nil).
func startIntruder(t *testing.T, name, secret string, routes []string, tlsFiles *Options) *intruder {
	t.Helper()
	so := &server.Options{ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: server.RANDOM_PORT, TLSTimeout: routeTLSTimeout.Seconds()}}
	var user, pass string
	if secret != "" {
		user, pass = routeCredentials(secret)
		so.Cluster.Username, so.Cluster.Password = user, pass
	}
	if tlsFiles != nil {
		var err error
		if so.Cluster.TLSConfig, err = routeTLS(*tlsFiles); err != nil {
			t.Fatal(err)
		}
		// The intruder takes any certificate: what refuses it must be
		// the cluster's own verification.
		so.Cluster.TLSConfig.InsecureSkipVerify = true
	}
	for _, r := range routes {
		u := fmt.Sprintf("nats-route://%s", r)
		if secret != "" {
			u = fmt.Sprintf("nats-route://%s:%s@%s", user, pass, r)
		}
		so.Routes = append(so.Routes, server.RoutesFromStr(u)...)
	}
	srv, err := server.NewServer(so)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("intruder %s not ready", name)
	}
	return &intruder{name: name, srv: srv}
}

// refused waits until a cluster's server logged refusing a route (an entry
// whose message holds what), then checks that the intruder has no route
// and that no server of the cluster has one to it.
func (in *intruder) refused(t *testing.T, stores []*Store, logs []*observer.ObservedLogs, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !anyLogged(logs, what) {
		if time.Now().After(deadline) {
			t.Fatalf("no server of the cluster logged %q within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := in.srv.NumRoutes(); n != 0 {
		t.Errorf("intruder %s has %d routes; want 0", in.name, n)
	}
	for i, s := range stores {
		rz, err := s.srv.Routez(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rz.Routes {
			if r.RemoteName == in.name {
				t.Errorf("node %d has a route to intruder %s", i+1, in.name)
			}
		}
	}
}

// clearLogs drops the entries logged so far, so that what refused looks
// for next comes from the intruder started after, and checks on the way
// that none of them holds the route secret or the password made from it.
func clearLogs(t *testing.T, logs []*observer.ObservedLogs) {
	t.Helper()
	_, pass := routeCredentials(testRouteSecret)
	for i, l := range logs {
		for _, e := range l.TakeAll() {
			line := e.Message
			for _, f := range e.Context {
				line += " " + f.String
				if err, ok := f.Interface.(error); ok {
					line += " " + err.Error()
				}
			}
			if strings.Contains(line, testRouteSecret) || strings.Contains(line, pass) {
				t.Errorf("node %d logged the route secret or its password: %q", i+1, line)
			}
		}
	}
}

func anyLogged(logs []*observer.ObservedLogs, what string) bool {
	for _, l := range logs {
		for _, e := range l.All() {
			if strings.Contains(e.Message, what) {
				return true
			}
		}
	}
	return false
}
