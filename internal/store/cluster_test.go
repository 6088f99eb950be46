package store

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Three embedded servers routed to each other are one NATS cluster: a
// record written through one is read through another, and it survives the
// loss of the server it was written through (replicas 3).
func TestEmbeddedServersFormOneStore(t *testing.T) {
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	stores := make([]*Store, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range stores {
		var routes []string
		for j, a := range addrs {
			if j != i {
				routes = append(routes, a)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stores[i], errs[i] = Open(ctx, Options{Node: fmt.Sprintf("n%d", i+1), Embedded: true, Dir: t.TempDir(), Replicas: 3,
				ClusterListen: addrs[i], ClusterName: "test", Routes: routes, NodeTimeout: 2 * time.Second}, zaptest.NewLogger(t))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
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
