package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Bucket names. callctl_calls holds one record per answered live call,
// keyed by session id.
const (
	CallsBucket = "callctl_calls"
	// NodesBucket holds each node's latest heartbeat.
	NodesBucket = "callctl_nodes"
)

// markerTTL is how long the marker of a removed record stays (watchers of
// other nodes see the removal), after which JetStream drops it: one call
// must not leave a marker forever.
const markerTTL = time.Minute

// Options say which NATS system holds the store.
type Options struct {
	// Node is this node's name (the embedded server's name too).
	Node string
	// Embedded starts an in-process NATS server with its JetStream file
	// store in Dir; otherwise URL names an external NATS system.
	Embedded bool
	Dir      string
	// URL, Credentials, CAFile, CertFile and KeyFile reach the external
	// system (config.NATS).
	URL, Credentials, CAFile, CertFile, KeyFile string
	// Replicas is the JetStream replication of the buckets.
	Replicas int
	// ClusterListen, Routes and ClusterName join the embedded server to
	// the other nodes' (a NATS cluster); empty ClusterListen: alone.
	ClusterListen, ClusterName string
	Routes                     []string
	// RouteSecret is the secret every server of the cluster presents on
	// its routes (config.Embedded.RouteSecret); required with
	// ClusterListen. RouteCertFile, RouteKeyFile and RouteCAFile, all set
	// or none, put the routes under mutually verified TLS.
	RouteSecret                              string
	RouteCertFile, RouteKeyFile, RouteCAFile string
	// NodeTimeout is how long a node may go without a heartbeat.
	NodeTimeout time.Duration
}

// Store is an open connection to the live-call store.
type Store struct {
	log   *zap.Logger
	srv   *server.Server // the embedded server, nil for an external one
	nc    *nats.Conn
	js    jetstream.JetStream
	calls jetstream.KeyValue
	nodes jetstream.KeyValue
}

// Entry is one record as stored.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
}

// ErrConflict is a compare-and-swap that failed: the record changed (or
// appeared, or went) since the revision the write was based on.
var ErrConflict = errors.New("store: the record changed since it was read")

// Open connects to the store (starting the embedded server first), and
// creates the buckets it needs when they are missing.
func Open(ctx context.Context, opts Options, log *zap.Logger) (*Store, error) {
	s := &Store{log: log}
	var err error
	if opts.Embedded {
		if s.srv, err = startEmbedded(opts, log); err != nil {
			return nil, err
		}
		s.nc, err = nats.Connect("", nats.InProcessServer(s.srv), nats.Name("callctl "+opts.Node), nats.Token(clientToken))
	} else {
		s.nc, err = connectExternal(opts, log)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connecting to NATS: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: JetStream: %w", err)
	}
	replicas := max(opts.Replicas, 1)
	s.calls, err = createBucket(ctx, s.js, jetstream.KeyValueConfig{
		Bucket:         CallsBucket,
		Description:    "callctl: live calls, one record per answered call",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
		LimitMarkerTTL: markerTTL,
	})
	if err == nil {
		s.nodes, err = createBucket(ctx, s.js, jetstream.KeyValueConfig{
			Bucket:      NodesBucket,
			Description: "callctl: live nodes, one heartbeat each",
			History:     1,
			Storage:     jetstream.MemoryStorage,
			Replicas:    replicas,
			// Only for tidiness: whether a node is alive is told by its
			// heartbeat advancing (package cluster), not by this.
			TTL: max(10*opts.NodeTimeout, time.Minute),
		})
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// createBucket creates or updates a bucket, waiting while JetStream is
// not yet able to (a cluster of embedded servers electing its leader as
// the nodes start) until ctx ends.
func createBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		// Each try on its own short deadline: with no JetStream leader yet
		// a request is not answered at all.
		try, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err := js.CreateOrUpdateKeyValue(try, cfg)
		cancel()
		if err == nil {
			return kv, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("store: bucket %s: %w (waited for JetStream: %v)", cfg.Bucket, err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Conn is the store's NATS connection, for the cluster's messages.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Beat writes this node's heartbeat: value under node in NodesBucket.
func (s *Store) Beat(ctx context.Context, node string, value []byte) error {
	_, err := s.nodes.Put(ctx, node, value)
	return err
}

// Forget removes node's heartbeat at once (a node leaving).
func (s *Store) Forget(ctx context.Context, node string) error {
	return s.nodes.Purge(ctx, node)
}

// Claim replaces the record under key, still at rev, with value: the
// compare-and-swap that moves a call to a new owner. ErrConflict when
// someone else changed it first.
func (s *Store) Claim(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	return s.put(ctx, key, value, rev)
}

// connectExternal dials the NATS system of opts.URL, with its credentials
// and TLS, retrying in the background once connected (nats.go reconnects).
func connectExternal(opts Options, log *zap.Logger) (*nats.Conn, error) {
	o := []nats.Option{
		nats.Name("callctl " + opts.Node),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("store: disconnected from NATS", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("store: reconnected to NATS", zap.String("server", nc.ConnectedUrlRedacted()))
		}),
	}
	if opts.Credentials != "" {
		o = append(o, nats.UserCredentials(opts.Credentials))
	}
	if opts.CAFile != "" {
		o = append(o, nats.RootCAs(opts.CAFile))
	}
	if opts.CertFile != "" {
		o = append(o, nats.ClientCert(opts.CertFile, opts.KeyFile))
	}
	return nats.Connect(opts.URL, o...)
}

// Close drains the connection and stops the embedded server.
func (s *Store) Close() {
	if s.nc != nil {
		_ = s.nc.Drain()
		for i := 0; i < 100 && !s.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		s.nc.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Records returns every call record in the store, trying again (until
// ctx ends) while JetStream does not answer: the bucket's leader may have
// gone with a node, and its successor is elected within seconds.
func (s *Store) Records(ctx context.Context) ([]Entry, error) {
	for {
		try, cancel := context.WithTimeout(ctx, 3*time.Second)
		out, err := s.records(try)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return out, err
		}
	}
}

func (s *Store) records(ctx context.Context) ([]Entry, error) {
	lister, err := s.calls.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: listing %s: %w", CallsBucket, err)
	}
	defer func() { _ = lister.Stop() }()
	var out []Entry
	for key := range lister.Keys() {
		e, err := s.calls.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, fmt.Errorf("store: reading %s/%s: %w", CallsBucket, key, err)
		}
		out = append(out, Entry{Key: key, Value: e.Value(), Revision: e.Revision()})
	}
	return out, nil
}

// put writes value under key: a new key when rev is 0, else an update of
// revision rev. It returns the new revision; ErrConflict when the key is
// not at rev.
func (s *Store) put(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	var n uint64
	var err error
	if rev == 0 {
		n, err = s.calls.Create(ctx, key, value)
	} else {
		n, err = s.calls.Update(ctx, key, value, rev)
	}
	if isConflict(err) {
		return 0, fmt.Errorf("%w: %s: %v", ErrConflict, key, err)
	}
	return n, err
}

// remove purges key if it is still at rev (its marker goes after
// markerTTL).
func (s *Store) remove(ctx context.Context, key string, rev uint64) error {
	err := s.calls.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL))
	if isConflict(err) {
		return fmt.Errorf("%w: %s: %v", ErrConflict, key, err)
	}
	return err
}

// isConflict reports whether err is JetStream refusing a write because
// the key is not at the expected revision.
func isConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// WatchCalls calls f with every call record in the store, then with every
// change (value nil for a removed one) until ctx ends; f runs on one
// goroutine, in order.
func (s *Store) WatchCalls(ctx context.Context, f func(key string, value []byte)) error {
	w, err := s.calls.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("store: watching %s: %w", CallsBucket, err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					f(e.Key(), nil)
				} else {
					f(e.Key(), e.Value())
				}
			}
		}
	}()
	return nil
}
