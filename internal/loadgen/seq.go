package loadgen

// seqTracker follows the counters of one received stream: how many arrived
// once, how many again (duplicates) and how many after a higher counter
// (reordered, "late" in RFC 3550 terms). Loss is what the sender counted
// minus what arrived once; the tracker does not guess it from gaps, so a
// stream's tail lost in flight is counted too. Duplicates are recognised
// within the last 64 counters; an older straggler counts as reordered.
type seqTracker struct {
	started bool
	max     uint32 // highest counter received
	min     uint32 // lowest counter received
	window  uint64 // bit i: counter max-i received
	unique  uint32 // counters received at least once
}

// seqVerdict is what one packet was to its stream.
type seqVerdict uint8

const (
	seqNew       seqVerdict = iota // first arrival, in order
	seqReordered                   // first arrival, after a higher counter
	seqDuplicate                   // arrived before
)

// add records counter c and says what the packet was.
func (t *seqTracker) add(c uint32) seqVerdict {
	if !t.started {
		t.started, t.max, t.min, t.window, t.unique = true, c, c, 1, 1
		return seqNew
	}
	if d := c - t.max; d != 0 && d < 1<<31 { // c is ahead of max (mod 2^32)
		if d >= 64 {
			t.window = 1
		} else {
			t.window = t.window<<d | 1
		}
		t.max = c
		t.unique++
		return seqNew
	}
	d := t.max - c
	if d < 64 {
		bit := uint64(1) << d
		if t.window&bit != 0 {
			return seqDuplicate
		}
		t.window |= bit
	}
	if int32(c-t.min) < 0 {
		t.min = c
	}
	t.unique++
	return seqReordered
}

// lossAt splits the loss of a stream of sent packets (counters 0 to
// sent-1) into the packets missing before the first one received, those
// missing after the last, and those missing in between.
func (t *seqTracker) lossAt(sent uint32) (start, mid, end uint32) {
	if !t.started {
		return sent, 0, 0
	}
	start = t.min
	if t.max+1 < sent {
		end = sent - 1 - t.max
	}
	if lost := sent - min(sent, t.unique); lost > start+end {
		mid = lost - start - end
	}
	return start, mid, end
}
