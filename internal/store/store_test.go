package store

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openEmbedded(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Node: "n1", Embedded: true, Dir: dir, Replicas: 1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitWritten waits until the writer has nothing queued.
func waitWritten(t *testing.T, w *Writer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		busy := len(w.queue) > 0
		for _, ks := range w.keys {
			busy = busy || ks.queued || ks.dirty
		}
		w.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("writer still busy after 5s")
}

func records(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	es, err := s.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range es {
		out[e.Key] = string(e.Value)
	}
	return out
}

// Records written before the store closed are there when it opens again on
// the same directory (a restart), and a removed one is not.
func TestRecordsOutliveTheProcessesStore(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	w := s.NewWriter(nil)
	w.Put("a", []byte("1"))
	w.Put("a", []byte("2"))
	w.Put("b", []byte("x"))
	w.Put("c", []byte("gone"))
	waitWritten(t, w)
	w.Remove("c")
	w.Put("a", []byte("3"))
	w.Close(5 * time.Second)
	if got := w.Stats(); got.Failures != 0 || got.Conflicts != 0 {
		t.Errorf("writer stats %+v; want no failures or conflicts", got)
	}
	s.Close()

	s = openEmbedded(t, dir)
	defer s.Close()
	got := records(t, s)
	if len(got) != 2 || got["a"] != "3" || got["b"] != "x" {
		t.Errorf("after reopening: %v; want a=3 b=x", got)
	}
}

// A record changed by someone else (another node's claim) is a conflict:
// the writer reports it and stops writing the key, and the other write
// stands.
func TestWriterReportsAConflictAndLeavesTheOtherWrite(t *testing.T) {
	s := openEmbedded(t, t.TempDir())
	defer s.Close()
	conflicts := make(chan string, 1)
	w := s.NewWriter(func(key string) { conflicts <- key })
	w.Put("k", []byte("mine"))
	waitWritten(t, w)
	es, _ := s.Records(context.Background())
	if len(es) != 1 {
		t.Fatalf("records %v; want one", es)
	}
	if _, err := s.put(context.Background(), "k", []byte("theirs"), es[0].Revision); err != nil {
		t.Fatal(err)
	}
	w.Put("k", []byte("mine again"))
	select {
	case key := <-conflicts:
		if key != "k" {
			t.Errorf("conflict on %q; want k", key)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no conflict reported")
	}
	w.Remove("k") // forgotten: nothing to remove
	w.Close(time.Second)
	if got := records(t, s); got["k"] != "theirs" {
		t.Errorf("record k = %q; want the other writer's %q", got["k"], "theirs")
	}
	if st := w.Stats(); st.Conflicts != 1 {
		t.Errorf("conflicts %d; want 1", st.Conflicts)
	}
}

// A writer adopting a record read back at start updates it in place.
func TestWriterAdoptsARecordReadBack(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	w := s.NewWriter(nil)
	w.Put("k", []byte("before"))
	w.Close(5 * time.Second)
	s.Close()

	s = openEmbedded(t, dir)
	defer s.Close()
	es, err := s.Records(context.Background())
	if err != nil || len(es) != 1 {
		t.Fatalf("records %v, %v", es, err)
	}
	w = s.NewWriter(func(key string) { t.Errorf("conflict on %s", key) })
	w.Adopt(es[0].Key, es[0].Revision)
	w.Put("k", []byte("after"))
	waitWritten(t, w)
	w.Remove("k")
	w.Close(5 * time.Second)
	if got := records(t, s); len(got) != 0 {
		t.Errorf("records %v after remove; want none", got)
	}
}
