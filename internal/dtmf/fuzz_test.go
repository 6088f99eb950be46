package dtmf

import (
	"errors"
	"math"
	"testing"
	"time"
)

// FuzzParseRelay: any body either fails with ErrMalformed or gives a key,
// and what FormatRelay writes for that key reads back the same.
func FuzzParseRelay(f *testing.F) {
	for _, s := range []string{
		"Signal=5\r\nDuration=160\r\n", "signal = a\nduration=0", "Signal=10\r\n", "Signal=!\r\n",
		"Duration=100", "", "=\n=", "Signal=1\r\nSignal=2", "Signal=9\r\nDuration=99999999999",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, dur, err := ParseRelay(body)
		if err != nil {
			if key != 0 || dur != 0 {
				t.Fatalf("ParseRelay(%q) returned %q, %v with error %v", body, key, dur, err)
			}
			return
		}
		if _, ok := EventCode(key); !ok || dur < 0 || dur%time.Millisecond != 0 {
			t.Fatalf("ParseRelay(%q) = %q, %v: not a key or not whole milliseconds", body, key, dur)
		}
		again := FormatRelay(key, dur)
		key2, dur2, err := ParseRelay(again)
		want := dur
		if want == 0 {
			want = DefaultDuration
		}
		if err != nil || key2 != key || dur2 != want {
			t.Fatalf("round trip of %q via %q = %q, %v, %v; want %q, %v", body, again, key2, dur2, err, key, want)
		}
	})
}

// FuzzRelayRoundTrip: every key and duration FormatRelay accepts parses back.
func FuzzRelayRoundTrip(f *testing.F) {
	f.Add(byte('5'), int64(100*time.Millisecond))
	f.Add(byte('d'), int64(0))
	f.Fuzz(func(t *testing.T, key byte, ns int64) {
		want, ok := normalizeKey(key)
		if !ok {
			return
		}
		d := time.Duration(ns)
		got, dur, err := ParseRelay(FormatRelay(key, d))
		if err != nil || got != want {
			t.Fatalf("ParseRelay(FormatRelay(%q, %v)) = %q, %v; want %q", key, d, got, err, want)
		}
		if d > 0 && d < math.MaxUint32*time.Millisecond && (dur < d-time.Millisecond || dur > d+time.Millisecond) && dur != time.Millisecond {
			t.Fatalf("duration %v came back as %v", d, dur)
		}
	})
}

// FuzzParseEvent: ParseEvent never panics, round-trips its four bytes (R bit
// aside), and a Detector fed anything never panics nor reports one packet
// twice.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte{5, 0x0a, 0, 160}, uint32(1), uint32(1000))
	f.Add([]byte{11, 0xca, 0xff, 0xff, 0}, uint32(0), uint32(0xFFFFFFFF))
	f.Add([]byte{}, uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, payload []byte, ssrc, ts uint32) {
		ev, err := ParseEvent(payload)
		if err != nil {
			if len(payload) >= 4 {
				t.Fatalf("ParseEvent(% x): %v", payload, err)
			}
		} else if p := ev.Payload(); p[0] != payload[0] || p[1] != payload[1]&^0x40 || p[2] != payload[2] || p[3] != payload[3] {
			t.Fatalf("ParseEvent(% x) = %+v, which encodes as % x", payload, ev, p)
		}
		var d Detector
		first, ok1 := d.Feed(ssrc, ts, payload)
		if _, ok2 := d.Feed(ssrc, ts, payload); ok2 {
			t.Fatalf("Feed(% x) reported %q twice", payload, first)
		}
		if ok1 != (err == nil && ev.Code < 16) {
			t.Fatalf("Feed(% x) = %q, %v; want a key exactly for events 0-15", payload, first, ok1)
		}
	})
}

// FuzzParseKeys: ParseKeys either returns only Keys bytes or a KeyError
// pointing at a byte that is not a key.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{"1234567890*#", "abcd", "", "1x", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(s)
		if err != nil {
			ke, ok := err.(*KeyError)
			if !ok || (s == "") != (ke.Pos < 0) {
				t.Fatalf("ParseKeys(%q) error %v", s, err)
			}
			if ke.Pos >= 0 {
				if _, isKey := normalizeKey(s[ke.Pos]); isKey {
					t.Fatalf("ParseKeys(%q) blames position %d, a key", s, ke.Pos)
				}
			}
			return
		}
		if checkKeys(keys) != nil || len(keys) != len(s) {
			t.Fatalf("ParseKeys(%q) = %q", s, keys)
		}
	})
}

// FuzzDetectorFeed reads data as a stream of 9-byte packets (SSRC byte,
// timestamp, payload) and checks that Feed never panics, never reports an
// immediate repeat of a packet, and reports at most one key per distinct
// SSRC and timestamp.
func FuzzDetectorFeed(f *testing.F) {
	var seed []byte
	for _, p := range (EncoderConfig{PayloadType: 101}).Plan([]byte("1#")) {
		seed = append(seed, 1, byte(p.Timestamp>>24), byte(p.Timestamp>>16), byte(p.Timestamp>>8), byte(p.Timestamp))
		seed = append(seed, p.Payload[:]...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Detector
		type id struct{ ssrc, ts uint32 }
		distinct := map[id]bool{}
		reported := 0
		for ; len(data) >= 9; data = data[9:] {
			ssrc := uint32(data[0])
			ts := uint32(data[1])<<24 | uint32(data[2])<<16 | uint32(data[3])<<8 | uint32(data[4])
			distinct[id{ssrc, ts}] = true
			if _, ok := d.Feed(ssrc, ts, data[5:9]); ok {
				reported++
			}
			if k, ok := d.Feed(ssrc, ts, data[5:9]); ok {
				t.Fatalf("packet % x reported %q again when repeated", data[:9], k)
			}
		}
		if reported > len(distinct) {
			t.Fatalf("%d keys reported from %d distinct (SSRC, timestamp) pairs", reported, len(distinct))
		}
	})
}

// FuzzParseDTMFBody: any application/dtmf body either fails with
// ErrMalformed or gives one of the keys, and that key written as a body
// reads back the same.
func FuzzParseDTMFBody(f *testing.F) {
	for _, s := range []string{"5", " # \r\n", "a", "D", "10", "15", "16", "!", "", "55", "\x00", "é"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, err := ParseDTMFBody(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || key != 0 {
				t.Fatalf("ParseDTMFBody(%q) = %q, %v; want 0 and an ErrMalformed error", body, key, err)
			}
			return
		}
		if _, ok := EventCode(key); !ok {
			t.Fatalf("ParseDTMFBody(%q) = %q: not a DTMF key", body, key)
		}
		if again, err := ParseDTMFBody([]byte{key}); err != nil || again != key {
			t.Fatalf("ParseDTMFBody(%q) = %q, %v; want %q", []byte{key}, again, err, key)
		}
	})
}
