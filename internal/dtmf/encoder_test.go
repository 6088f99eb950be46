package dtmf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// pkt builds an expected plan packet.
func pkt(at time.Duration, marker bool, ts uint32, code uint8, end bool, dur uint16) Packet {
	return Packet{At: at, Marker: marker, Timestamp: ts,
		Payload: Event{Code: code, End: end, Volume: DefaultVolume, Duration: dur}.Payload()}
}

func TestPlanOfOneDefaultKeyIsFiveReportsAndTwoEndRetransmissions(t *testing.T) {
	// 100 ms at 8 kHz in 20 ms packets (RFC 4733 §2.5.1): marker first,
	// one timestamp, duration +160 per packet, E packet three times.
	want := []Packet{
		pkt(0*ms, true, 0, 5, false, 160),
		pkt(20*ms, false, 0, 5, false, 320),
		pkt(40*ms, false, 0, 5, false, 480),
		pkt(60*ms, false, 0, 5, false, 640),
		pkt(80*ms, false, 0, 5, true, 800),
		pkt(100*ms, false, 0, 5, true, 800),
		pkt(120*ms, false, 0, 5, true, 800),
	}
	got := EncoderConfig{PayloadType: 101}.Plan([]byte("5"))
	comparePlans(t, got, want)
}

func TestPlanStartsTheNextKeyAfterToneAndGapWithAnAdvancedTimestamp(t *testing.T) {
	got := EncoderConfig{PayloadType: 101}.Plan([]byte("1#"))
	if len(got) != 14 {
		t.Fatalf("plan of 2 keys has %d packets, want 14", len(got))
	}
	second := got[7]
	// Tone 100 ms + gap 100 ms: 200 ms and 1600 clock units later.
	if want := pkt(200*ms, true, 1600, 11, false, 160); second != want {
		t.Errorf("first packet of the second key = %+v, want %+v", second, want)
	}
	for _, p := range got[7:] {
		if p.Timestamp != 1600 || p.Payload[0] != 11 {
			t.Errorf("second key's packet %+v: want timestamp 1600 and event 11", p)
		}
	}
}

func TestPlanHonoursEveryConfigField(t *testing.T) {
	cfg := EncoderConfig{PayloadType: 96, ClockRate: 16000, Duration: 60 * ms, Gap: 40 * ms, Interval: 50 * ms, Volume: 20}
	vol := func(p Packet) Packet { p.Payload[1] = p.Payload[1]&endBit | 20; return p }
	want := []Packet{
		// 60 ms = 960 units at 16 kHz, reported in 50 ms (800-unit) steps.
		vol(pkt(0*ms, true, 0, 12, false, 800)),
		vol(pkt(50*ms, false, 0, 12, true, 960)),
		vol(pkt(100*ms, false, 0, 12, true, 960)),
		vol(pkt(150*ms, false, 0, 12, true, 960)),
		// Tone+gap is 100 ms, but the end retransmissions run to 150 ms:
		// the next key starts on the next grid point, 200 ms (3200 units).
		vol(pkt(200*ms, true, 3200, 0, false, 800)),
		vol(pkt(250*ms, false, 3200, 0, true, 960)),
		vol(pkt(300*ms, false, 3200, 0, true, 960)),
		vol(pkt(350*ms, false, 3200, 0, true, 960)),
	}
	comparePlans(t, cfg.Plan([]byte("A0")), want)
}

func TestPlanSplitsToneLongerThan0xFFFFIntoSegments(t *testing.T) {
	// 10 s at 8 kHz = 80000 units: a first segment of 0xFFFF, then 14465.
	// 160-unit steps cross 65535 between 65440 and 65600 (RFC 4733 §2.5.1.3).
	cfg := EncoderConfig{PayloadType: 101, Duration: 10 * time.Second}
	got := cfg.Plan([]byte("7"))
	checkPlan(t, cfg, "7", got)
	// Tick k reports (k+1)*160 units: tick 408 (65440) is the last of
	// segment 0; tick 409 closes it with 0xFFFF and starts segment 1 at
	// timestamp 65535, 65 units in; the close is repeated at 410 and 411.
	want := []Packet{
		pkt(408*20*ms, false, 0, 7, false, 65440),
		pkt(409*20*ms, false, 0, 7, false, 0xFFFF),
		pkt(409*20*ms, false, 65535, 7, false, 65),
		pkt(410*20*ms, false, 0, 7, false, 0xFFFF),
		pkt(410*20*ms, false, 65535, 7, false, 225),
		pkt(411*20*ms, false, 0, 7, false, 0xFFFF),
		pkt(411*20*ms, false, 65535, 7, false, 385),
		pkt(412*20*ms, false, 65535, 7, false, 545),
	}
	comparePlans(t, got[408:416], want)
	last := got[len(got)-1]
	if want := pkt(501*20*ms, false, 65535, 7, true, 14465); last != want {
		t.Errorf("last packet = %+v, want %+v", last, want)
	}
}

func TestPlanClosesASegmentThatEndsExactlyOnAStep(t *testing.T) {
	// 255-unit steps (12750 Hz, 20 ms) reach 65535 = 257*255 exactly.
	cfg := EncoderConfig{PayloadType: 101, ClockRate: 12750, Duration: 6 * time.Second}
	got := cfg.Plan([]byte("9"))
	checkPlan(t, cfg, "9", got)
	want := []Packet{
		pkt(256*20*ms, false, 0, 9, false, 0xFFFF),
		pkt(257*20*ms, false, 0, 9, false, 0xFFFF),
		pkt(257*20*ms, false, 65535, 9, false, 255),
		pkt(258*20*ms, false, 0, 9, false, 0xFFFF),
		pkt(258*20*ms, false, 65535, 9, false, 510),
		pkt(259*20*ms, false, 65535, 9, false, 765),
	}
	comparePlans(t, got[256:262], want)
}

func TestPlanKeepsRFC4733InvariantsForManyConfigs(t *testing.T) {
	configs := []EncoderConfig{
		{PayloadType: 101},
		{PayloadType: 101, ClockRate: 48000},
		{PayloadType: 101, ClockRate: 44100, Interval: 30 * ms, Duration: 70 * ms, Gap: 45 * ms},
		{PayloadType: 101, Interval: 100 * ms, Duration: 40 * ms},
		{PayloadType: 101, Interval: 5 * ms, Duration: 250 * ms, Gap: 10 * time.Second},
		{PayloadType: 101, ClockRate: 48000, Duration: 3 * time.Second}, // 144000 units: three segments
		{PayloadType: 101, ClockRate: 192000, Duration: 10 * time.Second, Interval: 100 * ms},
	}
	for _, cfg := range configs {
		checkPlan(t, cfg, "1234567890*#ABCD", cfg.Plan([]byte("1234567890*#ABCD")))
	}
}

func TestPlanSkipsBytesThatAreNotKeys(t *testing.T) {
	cfg := EncoderConfig{PayloadType: 101}
	if got := cfg.Plan([]byte("1x2")); len(got) != 14 || got[0].Payload[0] != 1 || got[7].Payload[0] != 2 {
		t.Errorf("Plan(\"1x2\") = %d packets starting %+v, want the 14 packets of 1 and 2", len(got), got)
	}
	if got := cfg.Plan(nil); len(got) != 0 {
		t.Errorf("Plan(nil) = %d packets, want none", len(got))
	}
}

func TestPlanClampsOutOfRangeSettings(t *testing.T) {
	// Volume 200 is cut to 63; 1 ms Duration is raised to 40 ms.
	got := EncoderConfig{PayloadType: 101, Volume: 200, Duration: ms}.Plan([]byte("1"))
	ev, _ := ParseEvent(got[len(got)-1].Payload[:])
	if ev.Volume != 63 || ev.Duration != 320 {
		t.Errorf("clamped plan ends with %+v, want volume 63 and duration 320 (40 ms)", ev)
	}
}

func TestEncoderConfigValidateNamesTheField(t *testing.T) {
	tests := []struct {
		cfg   EncoderConfig
		field string // "" for valid
		want  string // part of the message
	}{
		{cfg: EncoderConfig{PayloadType: 101}},
		{cfg: EncoderConfig{PayloadType: 96, ClockRate: 48000, Duration: 40 * ms, Gap: 10 * time.Second, Interval: 5 * ms, Volume: 63}},
		{cfg: EncoderConfig{PayloadType: 35}},
		{cfg: EncoderConfig{PayloadType: 127}},
		{cfg: EncoderConfig{}, field: "PayloadType", want: "96-127"},
		{cfg: EncoderConfig{PayloadType: 8}, field: "PayloadType", want: "8 cannot"},
		{cfg: EncoderConfig{PayloadType: 72}, field: "PayloadType", want: "72"},
		{cfg: EncoderConfig{PayloadType: 128}, field: "PayloadType", want: "128"},
		{cfg: EncoderConfig{PayloadType: 101, ClockRate: 999}, field: "ClockRate", want: "1000-192000"},
		{cfg: EncoderConfig{PayloadType: 101, Duration: 39 * ms}, field: "Duration", want: "40ms-10s"},
		{cfg: EncoderConfig{PayloadType: 101, Duration: -ms}, field: "Duration", want: "-1ms"},
		{cfg: EncoderConfig{PayloadType: 101, Gap: 11 * time.Second}, field: "Gap", want: "11s"},
		{cfg: EncoderConfig{PayloadType: 101, Interval: 101 * ms}, field: "Interval", want: "5ms-100ms"},
		{cfg: EncoderConfig{PayloadType: 101, Volume: 64}, field: "Volume", want: "0-63"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tt.cfg, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want a *ConfigError wrapping ErrInvalidArgument", tt.cfg, err)
			continue
		}
		if ce.Field != tt.field || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %q (field %q), want field %q and %q in the message", tt.cfg, err, ce.Field, tt.field, tt.want)
		}
	}
}

func comparePlans(t *testing.T, got, want []Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("plan has %d packets, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("packet %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// checkPlan verifies what RFC 4733 §2.5.1 asks of a sender, independently of
// how Plan builds the packets.
func checkPlan(t *testing.T, cfg EncoderConfig, keys string, plan []Packet) {
	t.Helper()
	c := cfg.normalized()
	tone := units(c.Duration, c.ClockRate)
	// Split into events at each marker.
	var events [][]Packet
	for i, p := range plan {
		if i > 0 && p.At < plan[i-1].At {
			t.Fatalf("%+v: packet %d at %v goes before packet %d at %v", cfg, i, p.At, i-1, plan[i-1].At)
		}
		if p.At%c.Interval != 0 {
			t.Fatalf("%+v: packet %d at %v is off the %v grid", cfg, i, p.At, c.Interval)
		}
		if p.Marker {
			events = append(events, nil)
		}
		if len(events) == 0 {
			t.Fatalf("%+v: plan does not start with a marker packet", cfg)
		}
		events[len(events)-1] = append(events[len(events)-1], p)
	}
	if len(events) != len(keys) {
		t.Fatalf("%+v: %d events (markers), want %d", cfg, len(events), len(keys))
	}
	var prevTS uint32
	var prevLast time.Duration
	for i, ev := range events {
		first := ev[0]
		code, _ := EventCode(keys[i])
		if first.Timestamp != uint32(units(first.At, c.ClockRate)) {
			t.Errorf("%+v: event %d timestamp %d, want its start %v in clock units", cfg, i, first.Timestamp, first.At)
		}
		if i > 0 {
			if gap := first.Timestamp - prevTS; uint64(gap) < tone+units(c.Gap, c.ClockRate) {
				t.Errorf("%+v: event %d starts %d units after event %d; want at least tone %d + gap", cfg, i, gap, i-1, tone)
			}
			if first.At <= prevLast {
				t.Errorf("%+v: event %d starts at %v, not after the previous event's last packet at %v", cfg, i, first.At, prevLast)
			}
		}
		var ends []Packet
		lastDur := map[uint32]uint16{} // per segment timestamp
		for _, p := range ev {
			e, _ := ParseEvent(p.Payload[:])
			if e.Code != code || e.Volume != c.Volume || p.Payload[1]&0x40 != 0 {
				t.Fatalf("%+v: event %d packet %+v: want code %d, volume %d, R clear", cfg, i, p, code, c.Volume)
			}
			seg := p.Timestamp - first.Timestamp
			if seg%maxSegment != 0 || uint64(seg) >= tone {
				t.Fatalf("%+v: event %d packet timestamp %d is not a segment start", cfg, i, p.Timestamp)
			}
			if e.Duration < lastDur[seg] {
				t.Errorf("%+v: event %d segment %d duration went down to %d", cfg, i, seg/maxSegment, e.Duration)
			}
			lastDur[seg] = e.Duration
			if e.End {
				ends = append(ends, p)
			}
		}
		if len(ends) != endRepeats {
			t.Fatalf("%+v: event %d has %d end packets, want 3", cfg, i, len(ends))
		}
		for j, p := range ends {
			if p.Payload != ends[0].Payload || p.Timestamp != ends[0].Timestamp || p.At != ends[0].At+time.Duration(j)*c.Interval {
				t.Errorf("%+v: event %d end packet %d = %+v, want a copy of %+v one interval later", cfg, i, j, p, ends[0])
			}
		}
		final, _ := ParseEvent(ends[0].Payload[:])
		if got := uint64(ends[0].Timestamp-first.Timestamp) + uint64(final.Duration); got != tone {
			t.Errorf("%+v: event %d ends after %d units, want the tone length %d", cfg, i, got, tone)
		}
		// Each full segment is closed by a 0xFFFF report sent three times.
		for seg := uint32(0); uint64(seg+1)*maxSegment < tone; seg++ {
			n := 0
			for _, p := range ev {
				if p.Timestamp == first.Timestamp+seg*maxSegment && p.Payload[2] == 0xff && p.Payload[3] == 0xff {
					n++
				}
			}
			if n != endRepeats {
				t.Errorf("%+v: event %d segment %d closed by %d packets of 0xFFFF, want 3", cfg, i, seg, n)
			}
		}
		prevTS, prevLast = first.Timestamp, ev[len(ev)-1].At
	}
}
