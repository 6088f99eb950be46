package dtmf

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// sentPacket is one packet a recorder received, with when it arrived.
type sentPacket struct {
	elapsed time.Duration // since the recorder was created
	pkt     rtp.Packet
}

// recorder is a fake RTPWriter: it keeps copies of the packets and can
// act (cancel, fail) after the n-th one.
type recorder struct {
	start   time.Time
	packets []sentPacket
	after   func(n int) error // called after the n-th packet (1-based); an error fails that write
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) WriteRTP(p *rtp.Packet) error {
	cp := *p
	cp.Payload = append([]byte(nil), p.Payload...)
	if r.after != nil {
		if err := r.after(len(r.packets) + 1); err != nil {
			return err
		}
	}
	r.packets = append(r.packets, sentPacket{elapsed: time.Since(r.start), pkt: cp})
	return nil
}

var testConfig = EncoderConfig{PayloadType: 101}

// checkStream verifies the packets form one RTP stream that follows plan:
// one SSRC, sequence numbers +1 each, timestamps a fixed base plus the plan's,
// the plan's marker and payload, and no packet before its time.
func checkStream(t *testing.T, got []sentPacket, plan []Packet) {
	t.Helper()
	if len(got) != len(plan) {
		t.Fatalf("writer got %d packets, want the plan's %d", len(got), len(plan))
	}
	first := got[0].pkt
	base := first.Timestamp - plan[0].Timestamp
	for i, s := range got {
		p := s.pkt
		if p.Version != 2 || p.PayloadType != testConfig.PayloadType || p.SSRC != first.SSRC {
			t.Errorf("packet %d: version %d, PT %d, SSRC %#x; want 2, %d, %#x", i, p.Version, p.PayloadType, p.SSRC, testConfig.PayloadType, first.SSRC)
		}
		if want := first.SequenceNumber + uint16(i); p.SequenceNumber != want {
			t.Errorf("packet %d: sequence number %d, want %d", i, p.SequenceNumber, want)
		}
		if want := base + plan[i].Timestamp; p.Timestamp != want {
			t.Errorf("packet %d: timestamp %d, want %d (base %d + %d)", i, p.Timestamp, want, base, plan[i].Timestamp)
		}
		if p.Marker != plan[i].Marker || string(p.Payload) != string(plan[i].Payload[:]) {
			t.Errorf("packet %d: marker %v payload % x, want %v % x", i, p.Marker, p.Payload, plan[i].Marker, plan[i].Payload)
		}
		if s.elapsed < plan[i].At {
			t.Errorf("packet %d written %v after the start, before its time %v", i, s.elapsed, plan[i].At)
		}
	}
}

func TestSendPlaysTwoKeysAsOnePacedRTPStream(t *testing.T) {
	r := newRecorder()
	if err := Send(context.Background(), r, testConfig, []byte("1#")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	elapsed := time.Since(r.start)
	plan := testConfig.Plan([]byte("1#"))
	checkStream(t, r.packets, plan)
	if last := plan[len(plan)-1].At; elapsed < last {
		t.Errorf("Send returned after %v, before the plan's last packet at %v", elapsed, last)
	}
	// Per key: 1 marker, 3 end packets, 7 in all, one timestamp.
	for k, key := range []uint8{1, 11} {
		ev := r.packets[7*k : 7*k+7]
		markers, ends := 0, 0
		for _, s := range ev {
			e, _ := ParseEvent(s.pkt.Payload)
			if e.Code != key || s.pkt.Timestamp != ev[0].pkt.Timestamp {
				t.Errorf("key %d: packet %+v has event %d, timestamp %d; want %d, %d", k, s.pkt.Header, e.Code, s.pkt.Timestamp, key, ev[0].pkt.Timestamp)
			}
			if s.pkt.Marker {
				markers++
			}
			if e.End {
				ends++
				if e.Duration != 800 {
					t.Errorf("key %d: end packet reports %d units, want 800 (100 ms)", k, e.Duration)
				}
			}
		}
		if markers != 1 || !ev[0].pkt.Marker || ends != 3 {
			t.Errorf("key %d: %d markers (first %v), %d end packets; want 1 on the first, 3", k, markers, ev[0].pkt.Marker, ends)
		}
	}
	if d := r.packets[7].pkt.Timestamp - r.packets[0].pkt.Timestamp; d != 1600 {
		t.Errorf("second key starts %d units after the first, want 1600 (tone + gap)", d)
	}
	if r.packets[7].elapsed < 200*ms {
		t.Errorf("second key written %v after the start, want at least tone + gap, 200 ms", r.packets[7].elapsed)
	}
}

func TestSendUsesANewStreamEachCall(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	cfg := EncoderConfig{PayloadType: 101, Duration: 40 * ms, Interval: 40 * ms}
	for _, r := range []*recorder{a, b} {
		if err := Send(context.Background(), r, cfg, []byte("1")); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if a.packets[0].pkt.SSRC == b.packets[0].pkt.SSRC {
		t.Errorf("two Send calls used the same SSRC %#x, want a random one each", a.packets[0].pkt.SSRC)
	}
}

func TestSendRefusesBadInputWithoutWritingAnything(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		w    RTPWriter
		cfg  EncoderConfig
		keys string
		want any // a pointer to the error type, or a sentinel
	}{
		{name: "bad key", cfg: testConfig, keys: "12x", want: new(*KeyError)},
		{name: "lower-case key not parsed", cfg: testConfig, keys: "a", want: new(*KeyError)},
		{name: "no keys", cfg: testConfig, keys: "", want: new(*KeyError)},
		{name: "no payload type", cfg: EncoderConfig{}, keys: "1", want: new(*ConfigError)},
		{name: "bad volume", cfg: EncoderConfig{PayloadType: 101, Volume: 99}, keys: "1", want: new(*ConfigError)},
		{name: "nil writer", w: RTPWriter(nil), cfg: testConfig, keys: "1", want: ErrInvalidArgument},
		{name: "cancelled context", ctx: cancelled, cfg: testConfig, keys: "1", want: context.Canceled},
	}
	for _, tt := range tests {
		r := newRecorder()
		ctx, w := tt.ctx, tt.w
		if ctx == nil {
			ctx = context.Background()
		}
		if w == nil && tt.name != "nil writer" {
			w = r
		}
		err := Send(ctx, w, tt.cfg, []byte(tt.keys))
		switch want := tt.want.(type) {
		case error:
			if !errors.Is(err, want) {
				t.Errorf("%s: Send error = %v, want %v", tt.name, err, want)
			}
		default:
			if err == nil || !errors.As(err, want) || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s: Send error = %v, want %T wrapping ErrInvalidArgument", tt.name, err, want)
			}
		}
		if len(r.packets) != 0 {
			t.Errorf("%s: %d packets written, want none", tt.name, len(r.packets))
		}
	}
}

func TestSendCancelledMidToneEndsTheToneWithOneEndPacket(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.after = func(n int) error {
		if n == 2 { // the 320-unit report of the first key
			cancel()
		}
		return nil
	}
	err := Send(ctx, r, testConfig, []byte("123"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error = %v, want context.Canceled", err)
	}
	if len(r.packets) != 3 {
		t.Fatalf("writer got %d packets, want 2 of the tone and 1 end packet", len(r.packets))
	}
	end := r.packets[2].pkt
	ev, _ := ParseEvent(end.Payload)
	if !ev.End || ev.Code != 1 || ev.Duration != 320 || end.Marker {
		t.Errorf("last packet = %+v (marker %v), want the end of event 1 at 320 units, no marker", ev, end.Marker)
	}
	if end.Timestamp != r.packets[0].pkt.Timestamp || end.SequenceNumber != r.packets[1].pkt.SequenceNumber+1 {
		t.Errorf("end packet timestamp %d seq %d, want the event's %d and seq %d",
			end.Timestamp, end.SequenceNumber, r.packets[0].pkt.Timestamp, r.packets[1].pkt.SequenceNumber+1)
	}
}

func TestSendCancelledBetweenKeysWritesNothingMore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.after = func(n int) error {
		if n == 7 { // the third copy of the first key's end packet
			cancel()
		}
		return nil
	}
	err := Send(ctx, r, testConfig, []byte("12"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error = %v, want context.Canceled", err)
	}
	checkStream(t, r.packets, testConfig.Plan([]byte("1")))
}

func TestSendCancelledDuringEndRetransmissionsAddsNoEndPacket(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.after = func(n int) error {
		if n == 5 { // the first end packet
			cancel()
		}
		return nil
	}
	if err := Send(ctx, r, testConfig, []byte("1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error = %v, want context.Canceled", err)
	}
	if len(r.packets) != 5 {
		t.Errorf("writer got %d packets, want the 5 sent before cancelling: the far end already has an end packet", len(r.packets))
	}
}

func TestSendCancelledInASecondSegmentEndsThatSegment(t *testing.T) {
	// At 48 kHz a 20 ms step is 960 units: 0xFFFF is crossed on tick 68.
	cfg := EncoderConfig{PayloadType: 101, ClockRate: 48000, Duration: 2 * time.Second}
	plan := cfg.Plan([]byte("4"))
	// Cancel right after the first retransmission of segment 0's close
	// (tick 69), sent after segment 1 has begun: the end packet must end
	// segment 1, not repeat segment 0.
	stopAt := 0
	for i, p := range plan {
		if p.Timestamp == 0 && p.Payload[2] == 0xff && p.Payload[3] == 0xff && i > 0 && plan[i-1].Timestamp == 65535 {
			stopAt = i + 1
			break
		}
	}
	if stopAt == 0 {
		t.Fatal("plan has no retransmitted segment close after a segment 1 packet")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	r.after = func(n int) error {
		if n == stopAt {
			cancel()
		}
		return nil
	}
	if err := Send(ctx, r, cfg, []byte("4")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error = %v, want context.Canceled", err)
	}
	end := r.packets[len(r.packets)-1].pkt
	ev, _ := ParseEvent(end.Payload)
	base := r.packets[0].pkt.Timestamp
	if !ev.End || end.Timestamp-base != 65535 {
		t.Errorf("end packet %+v at timestamp +%d, want E set on segment 1 (timestamp +65535)", ev, end.Timestamp-base)
	}
	want, _ := ParseEvent(plan[stopAt-2].Payload[:])
	if ev.Duration != want.Duration {
		t.Errorf("end packet reports %d units, want segment 1's last report %d", ev.Duration, want.Duration)
	}
}

func TestSendStopsOnAWriteError(t *testing.T) {
	boom := errors.New("no remote address")
	r := newRecorder()
	r.after = func(n int) error {
		if n == 3 {
			return boom
		}
		return nil
	}
	err := Send(context.Background(), r, testConfig, []byte("12"))
	if !errors.Is(err, boom) {
		t.Fatalf("Send error = %v, want the writer's error", err)
	}
	if len(r.packets) != 2 {
		t.Errorf("writer got %d packets, want 2 before the failing write", len(r.packets))
	}
}
