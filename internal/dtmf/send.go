package dtmf

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pion/rtp"
)

// RTPWriter takes RTP packets to send toward a party. callctl's
// media.Endpoint implements it and rewrites SSRC, sequence number and
// timestamp into its own continuous outgoing stream, so Send only has to keep
// them consistent within one call.
//
// The packet and its Payload belong to the caller and are only lent for the
// call: WriteRTP must be done with them when it returns (send or copy them,
// not keep the pointer or the slice). Send reuses one packet and one payload
// buffer for all its packets, so that it allocates nothing per packet.
type RTPWriter interface {
	WriteRTP(*rtp.Packet) error
}

// Send plays keys to w as RFC 4733 events, following cfg.Plan(keys) in real
// time (a time.Ticker at cfg.Interval), and returns when the last packet is
// written. Keys must be from Keys (see ParseKeys) and cfg must pass
// Validate; otherwise Send returns a *KeyError or *ConfigError and writes
// nothing.
//
// The packets of one call share a random SSRC; sequence numbers start at a
// random value and grow by one per packet; timestamps are a random base plus
// Packet.Timestamp.
//
// When ctx is cancelled Send stops and returns an error wrapping ctx.Err().
// If a tone is playing at that moment it first writes one end packet for it
// (E bit, the duration reported so far) so the far end does not keep playing
// it. A write error stops Send at once and is returned wrapped.
func Send(ctx context.Context, w RTPWriter, cfg EncoderConfig, keys []byte) error {
	if w == nil {
		return fmt.Errorf("dtmf: Send: nil RTPWriter: %w", ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkKeys(keys); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dtmf: Send: not started: %w", err)
	}
	cfg = cfg.normalized()
	plan := cfg.Plan(keys)
	s := &sender{w: w, pt: cfg.PayloadType, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), base: rand.Uint32()}

	start := time.Now()
	ticker := time.NewTicker(cfg.Interval)
	defer ticker.Stop()
	i := 0
	for {
		// Everything due by now goes out; after a late tick that is more
		// than one packet, so the plan never drifts behind the clock.
		due := time.Since(start)
		for ; i < len(plan) && plan[i].At <= due; i++ {
			if ctx.Err() != nil {
				return s.stop(ctx.Err(), i, len(plan))
			}
			if err := s.write(plan[i]); err != nil {
				return fmt.Errorf("dtmf: Send: packet %d of %d: %w", i+1, len(plan), err)
			}
		}
		if i == len(plan) {
			return nil
		}
		select {
		case <-ctx.Done():
			return s.stop(ctx.Err(), i, len(plan))
		case <-ticker.C:
		}
	}
}

// sender writes the packets of one Send call and remembers the event in
// progress, to end it if Send is stopped.
type sender struct {
	w    RTPWriter
	pt   uint8
	ssrc uint32
	seq  uint16
	base uint32

	// pkt and payload are the one packet lent to w for every write (see
	// RTPWriter): the per-packet path allocates nothing.
	pkt     rtp.Packet
	payload [4]byte

	playing bool   // an event's packets have gone out but not yet its E bit
	last    Packet // the newest packet of that event
}

func (s *sender) write(p Packet) error {
	// Every field is set afresh, so nothing a writer may have changed in the
	// lent packet carries over to the next one.
	s.payload = p.Payload
	s.pkt = rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         p.Marker,
			PayloadType:    s.pt,
			SequenceNumber: s.seq,
			Timestamp:      s.base + p.Timestamp,
			SSRC:           s.ssrc,
		},
		Payload: s.payload[:],
	}
	if err := s.w.WriteRTP(&s.pkt); err != nil {
		return err
	}
	s.seq++
	// A retransmitted final packet of an earlier segment is older than the
	// newest packet and must not replace it.
	if p.Marker || !s.playing || int32(p.Timestamp-s.last.Timestamp) >= 0 {
		s.last = p
		s.playing = p.Payload[1]&endBit == 0
	}
	return nil
}

// stop ends Send on cancellation: one end packet for a tone in progress.
func (s *sender) stop(cause error, sent, total int) error {
	err := fmt.Errorf("dtmf: Send: stopped after %d of %d packets: %w", sent, total, cause)
	if !s.playing {
		return err
	}
	end := s.last
	end.Marker = false
	end.Payload[1] |= endBit
	if werr := s.write(end); werr != nil {
		return errors.Join(err, fmt.Errorf("dtmf: Send: end packet: %w", werr))
	}
	return err
}
