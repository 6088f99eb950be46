package listen

import (
	"math/rand/v2"
	"time"
)

// RFC 3550 Appendix A.1 limits: a larger sequence jump is a new source, not
// loss or reordering.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// maxTimestampSkew is how far a source's timestamps may run from the wall
// clock between two consecutive packets before the listener treats them as
// a new segment: more than network jitter, less than a hold. A phone that
// resumes after hold with its old SSRC, sequence and timestamps (no time
// passed for it) would otherwise look a hold's length late to the browser.
const maxTimestampSkew = time.Second

// defaultFrame is the packet duration assumed until the source shows its
// own: 20 ms, the usual ptime (RFC 3551 §4.2).
const defaultFrame = 20 * time.Millisecond

// renumber turns the packets of whatever feeds a listener's track (the
// party, then maybe after hold or transfer a new SSRC, or the same SSRC
// restarted) into one continuous RTP stream: its own sequence numbers, one
// after another, and timestamps that advance by the wall-clock time between
// sources (RFC 3550 §5.1). The browser's jitter buffer then sees one stream
// with gaps in time, never a reset. It is used by one goroutine.
type renumber struct {
	clock uint32 // RTP clock rate, Hz

	started bool
	gen     uint32 // the binding of the current source (see feed.attach)
	ssrc    uint32
	segSeq  uint16    // the source's sequence number that began the segment
	inSeq   uint16    // the source's highest sequence number
	inTS    uint32    // and its timestamp
	inAt    time.Time // when it arrived
	frame   uint32    // the source's packet duration in timestamp units

	seqOffset uint16
	tsOffset  uint32
	outSeq    uint16 // the highest sequence number written
	outTS     uint32 // and its timestamp
}

func newRenumber(clock uint32) *renumber {
	return &renumber{clock: clock, outSeq: uint16(rand.Uint32()), outTS: rand.Uint32(),
		frame: uint32(uint64(clock) * uint64(defaultFrame) / uint64(time.Second))}
}

// next maps one source packet into the stream. skipped is how many packets
// of the source were filtered out just before this one (telephone-event,
// comfort noise): they take no sequence numbers in the stream. ok is false
// for a packet to drop: a duplicate, or a late one from before the current
// segment.
func (r *renumber) next(gen, ssrc uint32, seq uint16, ts uint32, skipped uint16, at time.Time, marker bool) (outSeq uint16, outTS uint32, outMarker, ok bool) {
	newSegment := !r.started || gen != r.gen || ssrc != r.ssrc
	d := int16(seq - r.inSeq)
	if !newSegment {
		switch {
		case d == 0:
			return 0, 0, false, false
		case d < 0 && int(d) >= -maxMisorder:
			// Late: pass it on in place if it belongs to this segment.
			if int16(seq-r.segSeq) < 0 {
				return 0, 0, false, false
			}
			return seq + r.seqOffset, ts + r.tsOffset, marker, true
		case d < 0 || int(d) > maxDropout:
			newSegment = true
		default:
			newSegment = r.skewed(ts, at)
		}
	}
	if newSegment {
		r.resync(gen, ssrc, seq, ts, at)
		marker = true // RFC 3551 §4.1: the first packet of a talkspurt
	} else {
		if d == 1 {
			if f := ts - r.inTS; f > 0 && f <= r.clock/5 { // up to 200 ms a packet
				r.frame = f
			}
		}
		r.seqOffset -= min(skipped, uint16(d-1))
	}
	r.inSeq, r.inTS, r.inAt = seq, ts, at
	r.outSeq, r.outTS = seq+r.seqOffset, ts+r.tsOffset
	return r.outSeq, r.outTS, marker, true
}

// skewed reports whether a packet following the last one in sequence has a
// timestamp that the time between their arrivals cannot explain.
func (r *renumber) skewed(ts uint32, at time.Time) bool {
	delta := int64(int32(ts - r.inTS))
	if delta < 0 {
		return true
	}
	expected := int64(r.units(at.Sub(r.inAt)))
	limit := int64(uint64(maxTimestampSkew) * uint64(r.clock) / uint64(time.Second))
	return delta-expected > limit || expected-delta > limit
}

// resync starts a segment: the sequence goes on at the next number, and the
// timestamp advances by the time since the last packet (at least one
// packet's duration, so the new one never overlaps the last).
func (r *renumber) resync(gen, ssrc uint32, seq uint16, ts uint32, at time.Time) {
	advance := r.frame
	if r.started {
		advance = max(advance, r.units(at.Sub(r.inAt)))
	}
	r.started, r.gen, r.ssrc, r.segSeq = true, gen, ssrc, seq
	r.seqOffset = r.outSeq + 1 - seq
	r.tsOffset = r.outTS + advance - ts
}

// units converts a time between arrivals into timestamp units, clamped to
// an hour: beyond that the stream's timestamps would wrap anyway.
func (r *renumber) units(d time.Duration) uint32 {
	d = min(max(d, 0), time.Hour)
	return uint32(uint64(d) * uint64(r.clock) / uint64(time.Second))
}
