package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// writerWorkers is how many writes are in flight at once (each waits for
// JetStream's acknowledgement; keys are independent).
const writerWorkers = 4

// writeTimeout bounds one write; retryAfter is the pause before a failed
// one is tried again.
const (
	writeTimeout = 5 * time.Second
	retryAfter   = time.Second
)

// Writer applies records to the store in the background. Each key's writes
// are applied in order, one at a time, each with compare-and-swap on the
// revision the previous one produced; a write that finds a newer one
// pending is skipped (only the latest state matters). Put and Remove never
// block.
type Writer struct {
	s          *Store
	log        *zap.Logger
	onConflict func(key string)

	mu     sync.Mutex
	keys   map[string]*keyState
	queue  []string
	closed bool
	wake   chan struct{}
	wg     sync.WaitGroup
	stop   chan struct{}

	writes, failures, conflicts atomic.Uint64
}

// keyState is what the writer knows of one key.
type keyState struct {
	rev     uint64 // the revision in the store, 0 for none yet
	value   []byte // the pending value, when dirty
	remove  bool   // the pending write removes the key
	dirty   bool   // something is pending
	queued  bool   // the key is in the queue or being written
	retries int
}

// NewWriter starts a writer on s. onConflict, when set, is told of a key
// whose compare-and-swap failed: someone else changed the record (another
// node claimed the call); the writer forgets the key.
func (s *Store) NewWriter(onConflict func(key string)) *Writer {
	w := &Writer{s: s, log: s.log, onConflict: onConflict, keys: map[string]*keyState{},
		wake: make(chan struct{}, writerWorkers), stop: make(chan struct{})}
	for range writerWorkers {
		w.wg.Add(1)
		go w.work()
	}
	return w
}

// Adopt tells the writer that key is in the store at rev (a record read
// back at start): its next Put updates it.
func (w *Writer) Adopt(key string, rev uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ks := w.state(key)
	if !ks.dirty {
		ks.rev = rev
	}
}

// Put schedules value as key's record.
func (w *Writer) Put(key string, value []byte) { w.schedule(key, value, false) }

// Remove schedules the removal of key's record.
func (w *Writer) Remove(key string) { w.schedule(key, nil, true) }

func (w *Writer) schedule(key string, value []byte, remove bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	ks := w.state(key)
	if remove && ks.rev == 0 && !ks.queued {
		delete(w.keys, key) // never written: nothing to remove
		return
	}
	ks.value, ks.remove, ks.dirty = value, remove, true
	w.enqueueLocked(key, ks)
}

func (w *Writer) state(key string) *keyState {
	ks := w.keys[key]
	if ks == nil {
		ks = &keyState{}
		w.keys[key] = ks
	}
	return ks
}

func (w *Writer) enqueueLocked(key string, ks *keyState) {
	if ks.queued {
		return
	}
	ks.queued = true
	w.queue = append(w.queue, key)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stats are the writer's counters since it started.
type Stats struct{ Writes, Failures, Conflicts uint64 }

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Writes: w.writes.Load(), Failures: w.failures.Load(), Conflicts: w.conflicts.Load()}
}

func (w *Writer) work() {
	defer w.wg.Done()
	for {
		key, ok := w.next()
		if !ok {
			return
		}
		w.write(key)
	}
}

// next takes a key off the queue, waiting for one; false once closed and
// empty.
func (w *Writer) next() (string, bool) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			key := w.queue[0]
			w.queue[0] = ""
			w.queue = w.queue[1:]
			more := len(w.queue) > 0
			w.mu.Unlock()
			if more {
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
			return key, true
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return "", false
		}
		select {
		case <-w.wake:
		case <-w.stop:
		}
	}
}

// write applies key's pending state, then whatever became pending while it
// was written.
func (w *Writer) write(key string) {
	for {
		w.mu.Lock()
		ks := w.keys[key]
		if ks == nil || !ks.dirty {
			if ks != nil {
				ks.queued = false
			}
			w.mu.Unlock()
			return
		}
		value, remove, rev := ks.value, ks.remove, ks.rev
		ks.dirty, ks.value = false, nil
		w.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		var n uint64
		var err error
		if remove {
			err = w.s.remove(ctx, key, rev)
		} else {
			n, err = w.s.put(ctx, key, value, rev)
		}
		cancel()
		w.writes.Add(1)

		w.mu.Lock()
		switch {
		case err == nil:
			ks.retries = 0
			if remove {
				if !ks.dirty {
					delete(w.keys, key)
					w.mu.Unlock()
					return
				}
				ks.rev = 0
			} else {
				ks.rev = n
			}
		case errors.Is(err, ErrConflict):
			w.conflicts.Add(1)
			delete(w.keys, key)
			w.mu.Unlock()
			w.log.Warn("store: a call record changed under this node; it no longer writes it", zap.String("key", key), zap.Error(err))
			if w.onConflict != nil {
				w.onConflict(key)
			}
			return
		default:
			w.failures.Add(1)
			if !ks.dirty { // retry this state unless a newer one came
				ks.value, ks.remove, ks.dirty = value, remove, true
			}
			ks.retries++
			ks.queued = false
			retries, closed := ks.retries, w.closed
			w.mu.Unlock()
			if retries == 1 || retries%60 == 0 {
				w.log.Warn("store: writing a call record failed; retrying", zap.String("key", key), zap.Int("attempt", retries), zap.Error(err))
			}
			if !closed {
				w.retryLater(key)
			}
			return
		}
		w.mu.Unlock()
	}
}

// retryLater queues key again after retryAfter, unless the writer closed.
func (w *Writer) retryLater(key string) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(retryAfter)
		defer t.Stop()
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if ks := w.keys[key]; ks != nil && ks.dirty && !w.closed {
			w.enqueueLocked(key, ks)
		}
	}()
}

// Close writes what is pending (for at most wait), then stops the writer.
func (w *Writer) Close(wait time.Duration) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		busy := len(w.queue) > 0
		for _, ks := range w.keys {
			busy = busy || ks.queued
		}
		w.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	w.wg.Wait()
}
