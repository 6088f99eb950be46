package dtmf

// Detector turns the RFC 4733 packets a party sends into keys, each reported
// once. Its zero value is ready to use. A Detector is not safe for
// concurrent use: feed it from the goroutine that reads the party's RTP.
type Detector struct {
	recent [recentEvents]seenEvent
	next   int // ring position to overwrite
}

// recentEvents is how many events a Detector remembers; late packets of
// older events are recognised by their timestamp being behind.
const recentEvents = 8

// staleWindow bounds how far behind the newest event of a stream a packet's
// timestamp can be and still count as a late packet of an old event; further
// back, the sender must have restarted its timestamps, and the packet is new.
const staleWindow = 1 << 22 // about 8.7 minutes at 8 kHz

type seenEvent struct {
	used  bool
	ended bool
	code  uint8
	ssrc  uint32
	ts    uint32 // timestamp of the event's newest segment
}

// Feed takes the SSRC, RTP timestamp and payload of one telephone-event
// packet and returns the key when the packet is the first one seen of a new
// DTMF event: with or without the marker bit (it may be lost), and whether it
// reports progress or the end. Later packets of the same event (same SSRC and
// timestamp: growing durations, retransmitted end packets), the further
// segments of a long event (RFC 4733 §2.5.2.3), late packets of older events,
// events that are not keys (flash, tones) and malformed payloads return false.
// Feed does not allocate.
func (d *Detector) Feed(ssrc uint32, timestamp uint32, payload []byte) (key byte, ok bool) {
	ev, valid := parseEvent(payload)
	if !valid {
		return 0, false
	}
	key, isKey := KeyForEvent(ev.Code)
	if !isKey {
		return 0, false
	}
	newest := -1
	for i := range d.recent {
		e := &d.recent[i]
		if !e.used || e.ssrc != ssrc {
			continue
		}
		if e.ts == timestamp {
			e.ended = e.ended || ev.End
			return 0, false
		}
		if diff := timestamp - e.ts; !e.ended && e.code == ev.Code && diff%maxSegment == 0 && diff/maxSegment <= 4 {
			// A new segment of a long event starts where the previous one
			// reached 0xFFFF (§2.5.1.3); allow for a few segments lost.
			e.ts = timestamp
			e.ended = ev.End
			return 0, false
		}
		if newest < 0 || int32(e.ts-d.recent[newest].ts) > 0 {
			newest = i
		}
	}
	if newest >= 0 {
		if behind := d.recent[newest].ts - timestamp; int32(behind) > 0 && behind < staleWindow {
			return 0, false
		}
	}
	d.recent[d.next] = seenEvent{used: true, ended: ev.End, code: ev.Code, ssrc: ssrc, ts: timestamp}
	d.next = (d.next + 1) % recentEvents
	return key, true
}
