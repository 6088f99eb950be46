package dtmf

import "fmt"

// Event is one RFC 4733 §2.3 telephone-event payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	|     event     |E|R| volume    |          duration             |
type Event struct {
	Code     uint8  // event code; 0-15 are DTMF keys (KeyForEvent)
	End      bool   // E bit: this packet reports the end of the event
	Volume   uint8  // power level, 0 to 63 meaning 0 to -63 dBm0
	Duration uint16 // clock units since the event (or segment) started
}

const (
	eventLen = 4
	endBit   = 0x80
	volMask  = 0x3f
)

// ParseEvent reads a telephone-event payload. The R bit is ignored as §2.3
// asks of receivers, and bytes after the first four (padding some stacks add)
// are too. A payload shorter than four bytes wraps ErrMalformed.
func ParseEvent(payload []byte) (Event, error) {
	ev, ok := parseEvent(payload)
	if !ok {
		return Event{}, fmt.Errorf("dtmf: telephone-event payload is %d bytes; want 4 (RFC 4733 §2.3): %w",
			len(payload), ErrMalformed)
	}
	return ev, nil
}

func parseEvent(p []byte) (Event, bool) {
	if len(p) < eventLen {
		return Event{}, false
	}
	return Event{
		Code:     p[0],
		End:      p[1]&endBit != 0,
		Volume:   p[1] & volMask,
		Duration: uint16(p[2])<<8 | uint16(p[3]),
	}, true
}

// Payload encodes e as the four payload bytes, R bit clear; Volume is cut
// to its six bits.
func (e Event) Payload() [4]byte {
	b := [4]byte{e.Code, e.Volume & volMask, byte(e.Duration >> 8), byte(e.Duration)}
	if e.End {
		b[1] |= endBit
	}
	return b
}
