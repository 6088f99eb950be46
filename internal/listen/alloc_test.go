//go:build !race

// Allocation counts are only meaningful without the race detector (it makes
// sync.Pool drop items at random), so this file builds only without -race;
// `make test` runs it in a separate pass.

package listen

import (
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
)

func TestListenerForksAllocateNothing(t *testing.T) {
	l := newForkLoad(t, 10)
	p := media.ForkedPacket{PayloadType: 0, Payload: make([]byte, 160), Received: time.Now()}
	event := media.ForkedPacket{PayloadType: 101, Payload: make([]byte, 4), Received: time.Now()}
	send := func() {
		p.SequenceNumber++
		p.Timestamp += 160
		for _, f := range l.forks {
			f(p)
			f(event)
		}
		time.Sleep(100 * time.Microsecond) // let the writers keep up
	}
	for range 50 {
		send() // warm up pion's packet pool
	}
	if allocs := testing.AllocsPerRun(200, send); allocs != 0 {
		t.Errorf("one packet and one telephone-event through 10 listeners' forks and writers allocate %v times, want 0", allocs)
	}
	// Every audio packet is written or, if a writer fell behind, counted
	// as dropped; no event is either.
	eventually(t, "the writers have handled every packet", func() bool {
		for _, f := range l.feeds {
			if f.written.Load()+f.dropped.Load() != 251 {
				return false
			}
		}
		return true
	})
}
