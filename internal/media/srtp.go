package media

import (
	"fmt"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP (RFC 3711) with keys from SDP (SDES, RFC 4568) is terminated in the
// endpoint: what an SRTP party sends is authenticated and decrypted in the
// poller's read buffer before anything else looks at it (latching, the
// relay, the DTMF tap, the forks, the counters), and what is sent to an
// SRTP party is encrypted last, after the stream's header rewrite, into a
// buffer of the endpoint's own. Each endpoint therefore speaks RTP or SRTP
// to its party whatever the other party speaks. A packet that fails
// authentication or replay protection is dropped and counted
// (Stats.SRTPDropped), never relayed.

// srtpReplayWindow is the replay window, in packets (RFC 3711 §3.3.2 asks
// for at least 64).
const srtpReplayWindow = 128

// srtpOverhead is the most SRTP adds to an RTP packet: an HMAC-SHA1 tag of
// 80 bits or a GCM tag of 128 bits; SRTCP adds the 4-octet index too.
const srtpOverhead = 16 + 4

// srtpReceiver decrypts what the party sends. Only the poller goroutine
// reading the endpoint uses it (its RTP and RTCP sockets share a poller).
type srtpReceiver struct {
	key     Crypto
	ctx     *srtp.Context
	hdr     rtp.Header
	rtcpHdr rtcp.Header
}

// srtpSender encrypts what the endpoint sends; guarded by outStream.mu.
type srtpSender struct {
	key     Crypto
	ctx     *srtp.Context
	hdr     rtp.Header
	rtcpHdr rtcp.Header
	buf     [maxPacket + srtpOverhead]byte
}

func newSRTPContext(c Crypto) (*srtp.Context, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("media: SRTP key for %s: %w", c.Suite, ErrInvalidArgument)
	}
	n := 16 // every supported suite has a 128-bit master key
	ctx, err := srtp.CreateContext(c.Key[:n], c.Key[n:], c.Suite.profile(),
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.SRTCPReplayProtection(srtpReplayWindow))
	if err != nil {
		return nil, fmt.Errorf("media: SRTP context for %s: %w", c.Suite, err)
	}
	return ctx, nil
}

// SetSRTP makes the endpoint speak SRTP to its party: rx is the party's
// key (from its SDP, decrypting what it sends), tx callctl's own (from the
// SDP callctl sent it, encrypting what callctl sends). A key equal to the
// one in use keeps its context, so a re-INVITE that repeats the keys
// neither resets the replay window nor the rollover counter, and an
// encryption key is never restarted at index 0 (RFC 3711 §9.1).
func (e *Endpoint) SetSRTP(rx, tx Crypto) error {
	var in *srtpReceiver
	if cur := e.srtpIn.Load(); cur != nil && cur.key.Equal(rx) {
		in = cur
	} else {
		ctx, err := newSRTPContext(rx)
		if err != nil {
			return err
		}
		in = &srtpReceiver{key: rx, ctx: ctx}
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if cur := e.out.srtp; cur == nil || !cur.key.Equal(tx) {
		ctx, err := newSRTPContext(tx)
		if err != nil {
			return err
		}
		e.out.srtp = &srtpSender{key: tx, ctx: ctx}
	}
	e.srtpIn.Store(in)
	return nil
}

// ClearSRTP makes the endpoint speak plain RTP to its party.
func (e *Endpoint) ClearSRTP() {
	e.srtpIn.Store(nil)
	e.out.mu.Lock()
	e.out.srtp = nil
	e.out.mu.Unlock()
}

// SRTP reports whether the endpoint speaks SRTP to its party.
func (e *Endpoint) SRTP() bool { return e.srtpIn.Load() != nil }

// decryptRTP authenticates and decrypts an SRTP packet in place, returning
// the RTP packet (shorter by the tag), or false if it must be dropped.
func (r *srtpReceiver) decryptRTP(pkt []byte) ([]byte, bool) {
	out, err := r.ctx.DecryptRTP(pkt[:0:len(pkt)], pkt, &r.hdr)
	if err != nil || len(out) < rtpHeaderLen {
		return nil, false
	}
	return out, true
}

// decryptRTCP is decryptRTP for SRTCP (RFC 3711 §3.4).
func (r *srtpReceiver) decryptRTCP(pkt []byte) ([]byte, bool) {
	out, err := r.ctx.DecryptRTCP(pkt[:0:len(pkt)], pkt, &r.rtcpHdr)
	if err != nil || len(out) < rtcpHeaderLen {
		return nil, false
	}
	return out, true
}

// srtpDrop counts a packet that failed SRTP authentication, replay
// protection or decryption.
func (e *Endpoint) srtpDrop() {
	e.in.dropped.Add(1)
	e.in.srtpDropped.Add(1)
	e.pool.srtpDropped.Add(1)
}

// sealRTP returns what to write for a rewritten RTP packet: itself on a
// plain leg, else its encryption in the sender's buffer. Called under
// s.mu.
func (s *outStream) sealRTP(pkt []byte) ([]byte, error) {
	if s.srtp == nil {
		return pkt, nil
	}
	return s.srtp.ctx.EncryptRTP(s.srtp.buf[:0], pkt, &s.srtp.hdr)
}

// writeRTCP sends a relayed RTCP packet out of one of e's sockets,
// encrypted as SRTCP when e's party speaks SRTP.
func (e *Endpoint) writeRTCP(p *path, pkt []byte) error {
	dst := p.remote.Load().addr
	if !dst.IsValid() {
		return ErrNoRemote
	}
	if e.srtpIn.Load() == nil {
		return p.sock.writeTo(pkt, dst)
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if e.out.srtp == nil {
		return p.sock.writeTo(pkt, dst)
	}
	out, err := e.out.srtp.ctx.EncryptRTCP(e.out.srtp.buf[:0], pkt, &e.out.srtp.rtcpHdr)
	if err != nil {
		return err
	}
	return p.sock.writeTo(out, dst)
}

// SRTPDropped reports the packets the pool's endpoints dropped because
// they failed SRTP authentication or replay protection.
func (p *PortPool) SRTPDropped() uint64 { return p.srtpDropped.Load() }
