package dtmf

import (
	"testing"
)

// rx is one telephone-event packet as a party sends it.
type rx struct {
	ssrc, ts uint32
	ev       Event
}

func progress(ssrc, ts uint32, code uint8, dur uint16) rx {
	return rx{ssrc, ts, Event{Code: code, Volume: 10, Duration: dur}}
}

func end(ssrc, ts uint32, code uint8, dur uint16) rx {
	return rx{ssrc, ts, Event{Code: code, End: true, Volume: 10, Duration: dur}}
}

// digit is a whole event: three reports and the end packet three times.
func digit(ssrc, ts uint32, code uint8) []rx {
	return []rx{
		progress(ssrc, ts, code, 160), progress(ssrc, ts, code, 320), progress(ssrc, ts, code, 480),
		end(ssrc, ts, code, 640), end(ssrc, ts, code, 640), end(ssrc, ts, code, 640),
	}
}

func concat(parts ...[]rx) []rx {
	var out []rx
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// feedAll feeds packets to a new Detector and returns the keys it reported.
func feedAll(packets []rx) string {
	var d Detector
	var keys []byte
	for _, p := range packets {
		payload := p.ev.Payload()
		if k, ok := d.Feed(p.ssrc, p.ts, payload[:]); ok {
			keys = append(keys, k)
		}
	}
	return string(keys)
}

func TestDetectorReportsEachEventOnce(t *testing.T) {
	d1 := digit(1, 1000, 1)
	tests := []struct {
		name    string
		packets []rx
		want    string
	}{
		{"one event", d1, "1"},
		{"two events of the same key", concat(digit(1, 1000, 5), digit(1, 2600, 5)), "55"},
		{"marker packet lost", d1[1:], "1"},
		{"only the end packets arrive", d1[3:], "1"},
		{"a single end packet", d1[5:], "1"},
		{"end packets of the previous event arrive late", concat(d1, digit(1, 2600, 2), d1[3:]), "12"},
		{"reordered: the next event's first packet before this end",
			concat(d1[:3], digit(1, 2600, 2)[:1], d1[3:], digit(1, 2600, 2)[1:]), "12"},
		{"end packet lost, next event still reported", concat(d1[:3], digit(1, 2600, 1)), "11"},
		{"same timestamp from another source is another event", concat(d1, digit(2, 1000, 1)), "11"},
		{"all sixteen keys", func() []rx {
			var out []rx
			for c := uint8(0); c < 16; c++ {
				out = append(out, digit(7, uint32(c)*1600, c)...)
			}
			return out
		}(), Keys},
		{"timestamps wrap around", concat(digit(1, 0xFFFFFF00, 3), digit(1, 1500, 4)), "34"},
		{"flash and tones are not keys", concat(digit(1, 1000, 16), digit(1, 3000, 70)), ""},
		{"a sender restarting far behind is new", concat(digit(1, 1<<30, 8), digit(1, 1000, 9)), "89"},
		{"segments of a long event", []rx{
			progress(1, 500, 6, 160), progress(1, 500, 6, 0xFFFF), progress(1, 65535+500, 6, 65),
			progress(1, 500, 6, 0xFFFF), progress(1, 65535+500, 6, 225), end(1, 65535+500, 6, 400),
			end(1, 65535+500, 6, 400),
		}, "6"},
		{"third segment after a lost second", []rx{
			progress(1, 500, 6, 0xFFF0), progress(1, 2*65535+500, 6, 100), end(1, 2*65535+500, 6, 200),
		}, "6"},
		{"a late packet of an event the detector no longer remembers", func() []rx {
			var out []rx
			for i := uint32(0); i < recentEvents+2; i++ {
				out = append(out, digit(1, 1000+i*1600, 1)...)
			}
			return append(out, end(1, 1000, 1, 640))
		}(), "1111111111"},
		{"an end packet reordered before a report still ends the event", []rx{
			progress(1, 500, 6, 0xFFF0), end(1, 500, 6, 0xFFFF), progress(1, 500, 6, 0xFFF0), progress(1, 65535+500, 6, 160),
		}, "66"},
		{"same key right after an ended long event is new", []rx{
			progress(1, 500, 6, 0xFFFF), end(1, 500, 6, 0xFFFF), progress(1, 65535+500, 6, 160),
		}, "66"},
	}
	for _, tt := range tests {
		if got := feedAll(tt.packets); got != tt.want {
			t.Errorf("%s: reported %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDetectorIgnoresMalformedPayloads(t *testing.T) {
	var d Detector
	for _, p := range [][]byte{nil, {}, {1, 2, 3}} {
		if k, ok := d.Feed(1, 100, p); ok {
			t.Errorf("Feed(% x) = %q, true; want false", p, k)
		}
	}
	// A good packet after junk is still reported.
	if k, ok := d.Feed(1, 100, []byte{2, 0x0a, 0, 160}); !ok || k != '2' {
		t.Errorf("Feed of event 2 after junk = %q, %v; want '2', true", k, ok)
	}
}

func TestDetectorReadsWhatPlanSends(t *testing.T) {
	for _, cfg := range []EncoderConfig{
		{PayloadType: 101},
		{PayloadType: 101, ClockRate: 48000, Duration: 3 * 1000 * ms}, // segments
	} {
		var d Detector
		var keys []byte
		for _, p := range cfg.Plan([]byte(Keys + "11")) {
			if k, ok := d.Feed(0xabc, 0xFFFF0000+p.Timestamp, p.Payload[:]); ok {
				keys = append(keys, k)
			}
		}
		if string(keys) != Keys+"11" {
			t.Errorf("%+v: detector reported %q from a plan of %q", cfg, keys, Keys+"11")
		}
	}
}

func TestDetectorFeedDoesNotAllocate(t *testing.T) {
	var d Detector
	payload := []byte{5, 0x0a, 0, 160}
	ts := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		ts += 800
		d.Feed(1, ts, payload)
		d.Feed(1, ts, payload)
		d.Feed(1, ts, payload[:2])
	})
	if allocs != 0 {
		t.Errorf("Feed allocates %v times per call, want 0", allocs)
	}
}
