//go:build !race

// Allocation counts are only meaningful without the race detector, so this
// file builds only without -race; `make test` runs it in a separate pass
// (-run Alloc).

package dtmf

import (
	"context"
	"testing"
	"time"
)

// Send lends one packet to the writer for all its packets (RTPWriter): a
// packet's way from the plan to a writer that keeps nothing allocates
// nothing.
func TestSendPacketAllocatesNothing(t *testing.T) {
	cfg := EncoderConfig{PayloadType: 101}
	plan := cfg.Plan([]byte("1234567890*#"))
	w := &discard{}
	s := &sender{w: w, pt: cfg.PayloadType, ssrc: 0x1234}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if err := s.write(plan[i%len(plan)]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("sender.write allocates %v times per packet, want 0", allocs)
	}
	if w.n == 0 {
		t.Error("the writer got no packet")
	}
}

// What Send allocates is per call (the plan, the ticker), never per packet:
// three keys, three times the packets of one, cost the same.
func TestSendAllocationsDoNotGrowWithPackets(t *testing.T) {
	cfg := EncoderConfig{PayloadType: 101, Interval: 5 * time.Millisecond, Duration: 40 * time.Millisecond, Gap: 40 * time.Millisecond}
	count := func(keys string) (allocs float64, packets int) {
		w := &discard{}
		allocs = testing.AllocsPerRun(3, func() {
			if err := Send(context.Background(), w, cfg, []byte(keys)); err != nil {
				t.Fatal(err)
			}
		})
		return allocs, w.n / 4 // AllocsPerRun calls once more to warm up
	}
	one, onePackets := count("1")
	three, threePackets := count("123")
	if threePackets <= onePackets {
		t.Fatalf("%d packets for three keys, %d for one: want more", threePackets, onePackets)
	}
	if three != one {
		t.Errorf("Send allocates %v times for one key (%d packets) and %v for three (%d packets): want the same, 0 per packet",
			one, onePackets, three, threePackets)
	}
}
