package dtmf

import (
	"testing"

	"github.com/pion/rtp"
)

// BenchmarkPlan lays out a 12-key sequence at the defaults.
func BenchmarkPlan(b *testing.B) {
	cfg := EncoderConfig{PayloadType: 101}
	keys := []byte("1234567890*#")
	b.ReportAllocs()
	for b.Loop() {
		if len(cfg.Plan(keys)) != 84 {
			b.Fatal("unexpected plan length")
		}
	}
}

// BenchmarkDetectorFeed feeds a stream of events, each packet of which the
// detector must look up: the receive-path cost per telephone-event packet.
func BenchmarkDetectorFeed(b *testing.B) {
	plan := EncoderConfig{PayloadType: 101}.Plan([]byte("1234567890*#"))
	var d Detector
	var base uint32
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := &plan[i]
		d.Feed(0x1234, base+p.Timestamp, p.Payload[:])
		if i++; i == len(plan) {
			i, base = 0, base+plan[len(plan)-1].Timestamp+1600
		}
	}
}

// discard is an RTPWriter that keeps nothing and allocates nothing.
type discard struct{ n int }

func (w *discard) WriteRTP(*rtp.Packet) error { w.n++; return nil }

// BenchmarkSendPacket is Send's work per packet: building one RTP packet
// from the plan and handing it to the writer (the pacing is left out).
func BenchmarkSendPacket(b *testing.B) {
	cfg := EncoderConfig{PayloadType: 101}
	plan := cfg.Plan([]byte("1234567890*#"))
	s := &sender{w: &discard{}, pt: cfg.PayloadType, ssrc: 0x1234}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.write(plan[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(plan) {
			i = 0
		}
	}
}
