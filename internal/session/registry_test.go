package session

import (
	"testing"
	"time"
)

func TestPublishNumbersEventsInOrderForEverySubscriber(t *testing.T) {
	r := NewRegistry(time.Minute)
	a, b := r.Subscribe(10), r.Subscribe(10)
	defer a.Close()
	defer b.Close()
	for i := 0; i < 5; i++ {
		r.publish(Event{SessionID: "s", State: InCall})
	}
	for _, sub := range []*Subscription{a, b} {
		for want := uint64(1); want <= 5; want++ {
			ev := <-sub.C()
			if ev.Seq != want {
				t.Fatalf("seq %d, want %d", ev.Seq, want)
			}
		}
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	r := NewRegistry(time.Minute)
	slow := r.Subscribe(2)
	fast := r.Subscribe(100)
	defer fast.Close()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 50; i++ {
			r.publish(Event{SessionID: "s"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a slow subscriber")
	}
	if !slow.Dropped() {
		t.Fatal("slow subscriber not dropped")
	}
	n := 0
	for range slow.C() { // closed after the buffered events
		n++
	}
	if n != 2 {
		t.Fatalf("slow subscriber got %d events, want its buffer of 2", n)
	}
	if len(fast.C()) != 50 {
		t.Fatalf("fast subscriber has %d events, want 50", len(fast.C()))
	}
	slow.Close() // closing a dropped subscription is harmless
}

func TestEndedSessionsStayReadableForRetention(t *testing.T) {
	r := NewRegistry(time.Minute)
	now := time.Now()
	r.now = func() time.Time { return now }
	s := &Session{id: "x", snap: Snapshot{ID: "x", State: InCall, Start: now}}
	r.add(s)
	if r.LiveCount() != 1 {
		t.Fatal("live count")
	}
	if got, ok := r.Get("x"); !ok || got.State != InCall {
		t.Fatalf("Get live = %v %v", got, ok)
	}
	r.retire(s, Snapshot{ID: "x", State: CallerHungUp, Caller: Party{Number: "100"}, Start: now, End: now})
	if r.LiveCount() != 0 {
		t.Fatal("still live after retire")
	}
	if got, ok := r.Get("x"); !ok || got.State != CallerHungUp {
		t.Fatalf("ended session not readable: %v %v", got, ok)
	}
	if len(r.ByNumber("100")) != 1 {
		t.Fatal("ByNumber misses the ended session")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := r.Get("x"); ok {
		t.Fatal("ended session readable after retention")
	}
	if len(r.List()) != 0 {
		t.Fatal("List keeps an expired session")
	}
}
