package dtmf

import (
	"fmt"
	"time"
)

// Defaults of EncoderConfig, used for fields left zero.
const (
	DefaultClockRate = 8000                   // telephone-event's usual rate (RFC 4733 §2.1)
	DefaultDuration  = 100 * time.Millisecond // tone length of one key
	DefaultGap       = 100 * time.Millisecond // silence between keys: well above the 40 ms pause ITU-T Q.24 receivers need
	DefaultInterval  = 20 * time.Millisecond  // packet spacing, the usual audio ptime
	DefaultVolume    = 10                     // -10 dBm0
)

// Limits that Validate enforces and Plan clamps to.
const (
	minDuration, maxDuration = 40 * time.Millisecond, 10 * time.Second // Q.24: tones shorter than 40 ms may be missed
	minGap, maxGap           = 40 * time.Millisecond, 10 * time.Second
	minInterval, maxInterval = 5 * time.Millisecond, 100 * time.Millisecond
	minClockRate             = 1000
	maxClockRate             = 192000
	maxVolume                = 63
	maxSegment               = 0xFFFF // largest duration field (RFC 4733 §2.5.1.3)
	endRepeats               = 3      // the final packet is sent three times (§2.5.1.4)
)

// EncoderConfig describes how keys are sent as RFC 4733 events. Zero fields
// take the defaults above, except PayloadType, which must be the
// telephone-event payload type the leg negotiated in SDP.
type EncoderConfig struct {
	// PayloadType is the negotiated telephone-event payload type: 96-127
	// usually, or an unassigned 35-71 / 77-95 (RFC 3551 §6).
	PayloadType uint8
	// ClockRate of telephone-event in Hz (its a=rtpmap rate); default 8000.
	ClockRate uint32
	// Duration is the tone length of each key; default 100 ms, 40 ms to 10 s.
	// Tones longer than 0xFFFF clock units (8.19 s at 8 kHz) are sent as
	// segments (RFC 4733 §2.5.1.3).
	Duration time.Duration
	// Gap is the silence between two keys; default 100 ms, 40 ms to 10 s.
	// The next key starts on the packet grid at least Gap after the tone
	// ended and after the previous key's last retransmitted end packet.
	Gap time.Duration
	// Interval is the spacing of packets; default 20 ms, 5 to 100 ms.
	Interval time.Duration
	// Volume is the power level in -dBm0, 1 to 63; default (and 0) is 10.
	Volume uint8
}

// ConfigError reports an EncoderConfig field that is out of range. It wraps
// ErrInvalidArgument.
type ConfigError struct {
	Field string // the EncoderConfig field, e.g. "PayloadType"
	Msg   string // what is wrong and which values are allowed
}

func (e *ConfigError) Error() string { return "dtmf: " + e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalidArgument) true.
func (e *ConfigError) Unwrap() error { return ErrInvalidArgument }

// Validate reports the first field that is out of range as a *ConfigError.
// Zero fields are valid (they take defaults) except PayloadType.
func (c EncoderConfig) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	pt := c.PayloadType
	if pt < 35 || pt > 127 || (pt >= 72 && pt <= 76) {
		return bad("PayloadType", "%d cannot carry telephone-event; want the dynamic type negotiated in SDP (96-127, or 35-71, 77-95)", pt)
	}
	if c.ClockRate != 0 && (c.ClockRate < minClockRate || c.ClockRate > maxClockRate) {
		return bad("ClockRate", "%d Hz is outside %d-%d", c.ClockRate, minClockRate, maxClockRate)
	}
	if c.Duration != 0 && (c.Duration < minDuration || c.Duration > maxDuration) {
		return bad("Duration", "%v is outside %v-%v (0 for %v)", c.Duration, minDuration, maxDuration, DefaultDuration)
	}
	if c.Gap != 0 && (c.Gap < minGap || c.Gap > maxGap) {
		return bad("Gap", "%v is outside %v-%v (0 for %v)", c.Gap, minGap, maxGap, DefaultGap)
	}
	if c.Interval != 0 && (c.Interval < minInterval || c.Interval > maxInterval) {
		return bad("Interval", "%v is outside %v-%v (0 for %v)", c.Interval, minInterval, maxInterval, DefaultInterval)
	}
	if c.Volume > maxVolume {
		return bad("Volume", "%d is outside 0-%d (-dBm0; 0 for %d)", c.Volume, maxVolume, DefaultVolume)
	}
	return nil
}

// normalized fills in defaults and clamps out-of-range values, so Plan can
// work with any config.
func (c EncoderConfig) normalized() EncoderConfig {
	c.PayloadType &= 0x7f
	c.ClockRate = orDefault(c.ClockRate, DefaultClockRate, minClockRate, maxClockRate)
	c.Duration = orDefault(c.Duration, DefaultDuration, minDuration, maxDuration)
	c.Gap = orDefault(c.Gap, DefaultGap, minGap, maxGap)
	c.Interval = orDefault(c.Interval, DefaultInterval, minInterval, maxInterval)
	c.Volume = orDefault(c.Volume, DefaultVolume, 0, maxVolume)
	return c
}

func orDefault[T uint8 | uint32 | time.Duration](v, def, lo, hi T) T {
	switch {
	case v == 0:
		return def
	case v < lo:
		return lo
	case v > hi:
		return hi
	}
	return v
}

// Packet is one RTP packet of a plan, to be sent At after the plan starts.
type Packet struct {
	At        time.Duration // offset from the start of the sequence; on the Interval grid
	Marker    bool          // RTP marker bit: set on the first packet of each event only
	Timestamp uint32        // event (or segment) start in clock units from the sequence start
	Payload   [4]byte       // the RFC 4733 §2.3 payload (see Event.Payload)
}

// Plan lays out the packets that send keys as RFC 4733 events, in the order
// and at the offsets to send them. Bytes of keys that are not in Keys are
// skipped (check input with ParseKeys); out-of-range settings are clamped
// (check them with Validate).
//
// Per event (RFC 4733 §2.5.1): every packet carries the event's start
// timestamp; the first, sent at the start, has the marker bit and reports one
// Interval of duration; each following packet, one Interval later, reports
// one Interval more, up to the tone length; that last report has the E bit
// and is sent three times, at three consecutive Intervals (§2.5.1.4). A tone
// longer than 0xFFFF clock units is split into segments (§2.5.1.3): a packet
// reporting 0xFFFF without the E bit (also sent three times), then a new
// segment whose timestamp is where the previous one reached 0xFFFF, with no
// marker. An event's timestamp is its start offset in clock units, so
// consecutive events never overlap: each starts at least Duration+Gap after
// the previous one.
func (c EncoderConfig) Plan(keys []byte) []Packet {
	c = c.normalized()
	tone := max(units(c.Duration, c.ClockRate), 1)
	step := min(max(units(c.Interval, c.ClockRate), 1), maxSegment/2)
	perKey := int(ceilDiv(tone, step)) + endRepeats - 1 + int(tone/maxSegment)*endRepeats
	out := make([]Packet, 0, perKey*len(keys))
	var start time.Duration
	for _, k := range keys {
		code, ok := EventCode(k)
		if !ok {
			continue
		}
		ev := eventPlan{code: code, volume: c.Volume, start: start, ts: uint32(units(start, c.ClockRate)),
			tone: uint32(tone), step: uint32(step), interval: c.Interval}
		var last time.Duration
		out, last = ev.append(out)
		next := max(start+c.Duration+c.Gap, last+c.Interval)
		start = roundUp(next, c.Interval)
	}
	return out
}

// eventPlan lays out the packets of one event.
type eventPlan struct {
	code, volume uint8
	start        time.Duration // wall offset of the first packet
	ts           uint32        // timestamp of the first segment
	tone, step   uint32        // tone length and packet spacing in clock units
	interval     time.Duration
}

// append adds the event's packets to out and returns the offset of its last.
func (e eventPlan) append(out []Packet) ([]Packet, time.Duration) {
	type repeat struct {
		p    Packet
		left int
	}
	var buf [3]repeat // at most two pending at once: a segment's close and the event's end
	pending := buf[:0]
	var d uint32 // duration reported so far, from the event start
	for k := 0; ; k++ {
		at := e.start + time.Duration(k)*e.interval
		n := 0
		for _, r := range pending {
			r.p.At = at
			out = append(out, r.p)
			if r.left--; r.left > 0 {
				pending[n] = r
				n++
			}
		}
		pending = pending[:n]

		if d < e.tone {
			prev := d
			d = min(d+e.step, e.tone)
			if prev%maxSegment != 0 && segment(prev) < segment(d) {
				// This step crosses the 0xFFFF limit: close the previous
				// segment with a report of exactly 0xFFFF (§2.5.1.3).
				p := e.packet(at, false, segment(prev), false, maxSegment)
				out = append(out, p)
				pending = append(pending, repeat{p, endRepeats - 1})
			}
			seg := segment(d)
			dur := d - seg*maxSegment
			end := d == e.tone
			p := e.packet(at, k == 0, seg, end, uint16(dur))
			out = append(out, p)
			if end || dur == maxSegment {
				p.Marker = false // retransmissions never carry the marker
				pending = append(pending, repeat{p, endRepeats - 1})
			}
		}
		if d == e.tone && len(pending) == 0 {
			return out, at
		}
	}
}

func (e eventPlan) packet(at time.Duration, marker bool, seg uint32, end bool, dur uint16) Packet {
	return Packet{
		At:        at,
		Marker:    marker,
		Timestamp: e.ts + seg*maxSegment,
		Payload:   Event{Code: e.code, End: end, Volume: e.volume, Duration: dur}.Payload(),
	}
}

// segment is the index of the segment holding the clock unit that ends a
// reported duration d > 0.
func segment(d uint32) uint32 { return (d - 1) / maxSegment }

// units converts a wall-clock duration to clock units, rounding down,
// without overflowing for long sequences.
func units(d time.Duration, rate uint32) uint64 {
	if d <= 0 {
		return 0
	}
	s, rest := uint64(d/time.Second), uint64(d%time.Second)
	return s*uint64(rate) + rest*uint64(rate)/uint64(time.Second)
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

func roundUp(d, grid time.Duration) time.Duration {
	if r := d % grid; r != 0 {
		d += grid - r
	}
	return d
}
