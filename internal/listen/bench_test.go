package listen

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/webrtc/v4"
)

// forkLoad is n listeners' forks on one party, each with its writer
// running, as the relay's reader goroutine calls them.
type forkLoad struct {
	forks []media.Fork
	feeds []*feed
	done  chan struct{}
	wg    sync.WaitGroup
}

func newForkLoad(tb testing.TB, n int) *forkLoad {
	tb.Helper()
	var live atomic.Bool
	live.Store(true)
	l := &forkLoad{done: make(chan struct{})}
	for range n {
		track, err := webrtc.NewTrackLocalStaticRTP(codecs[0].cap, "caller", "caller")
		if err != nil {
			tb.Fatal(err)
		}
		f := newFeed("caller", track, "PCMU", &live)
		b := &binding{f: f, gen: 1, pt: 0, events: 101}
		l.forks = append(l.forks, b.fork)
		l.feeds = append(l.feeds, f)
		l.wg.Go(func() { f.write(l.done, 8000) })
	}
	tb.Cleanup(func() { close(l.done); l.wg.Wait() })
	return l
}

// BenchmarkListenerForks measures what listeners cost the relay per packet:
// for each, the payload-type check, the copy into a slot and the queueing.
// It must allocate nothing, with one listener or ten.
func BenchmarkListenerForks(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l := newForkLoad(b, n)
			p := media.ForkedPacket{PayloadType: 0, Payload: make([]byte, 160), Received: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				p.SequenceNumber++
				p.Timestamp += 160
				for _, f := range l.forks {
					f(p)
				}
			}
		})
	}
}
