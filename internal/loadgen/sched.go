package loadgen

import (
	"container/heap"
	"sync"
	"time"
)

// scheduler runs functions at given times on one goroutine: call hang-ups,
// SIP retransmissions, API operations' start. The functions must return
// quickly (they take call locks and send a datagram, or start a goroutine).
type scheduler struct {
	mu    sync.Mutex
	q     timerQueue
	seq   uint64
	wake  chan struct{}
	done  chan struct{}
	ended chan struct{}
}

type timerItem struct {
	at  int64 // nanotime
	seq uint64
	fn  func()
}

type timerQueue []timerItem

func (q timerQueue) Len() int { return len(q) }
func (q timerQueue) Less(i, j int) bool {
	return q[i].at < q[j].at || (q[i].at == q[j].at && q[i].seq < q[j].seq)
}
func (q timerQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timerQueue) Push(x any)   { *q = append(*q, x.(timerItem)) }
func (q *timerQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

func newScheduler() *scheduler {
	s := &scheduler{wake: make(chan struct{}, 1), done: make(chan struct{}), ended: make(chan struct{})}
	go s.run()
	return s
}

// after runs fn d from now.
func (s *scheduler) after(d time.Duration, fn func()) { s.at(nanotime()+int64(d), fn) }

// at runs fn at nanotime t.
func (s *scheduler) at(t int64, fn func()) {
	s.mu.Lock()
	s.seq++
	heap.Push(&s.q, timerItem{at: t, seq: s.seq, fn: fn})
	first := s.q[0].seq == s.seq
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// stop ends the goroutine; functions not yet due never run.
func (s *scheduler) stop() {
	close(s.done)
	<-s.ended
}

func (s *scheduler) run() {
	defer close(s.ended)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := nanotime()
		var due []func()
		s.mu.Lock()
		for len(s.q) > 0 && s.q[0].at <= now {
			due = append(due, heap.Pop(&s.q).(timerItem).fn)
		}
		wait := time.Hour
		if len(s.q) > 0 {
			wait = time.Duration(s.q[0].at - now)
		}
		s.mu.Unlock()
		for _, fn := range due {
			fn()
		}
		if len(due) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-s.done:
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}
