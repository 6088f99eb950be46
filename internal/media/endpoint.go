package media

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// maxPacket is the read buffer size: one Ethernet MTU. RTP over UDP is sized
// to avoid IP fragmentation, so audio packets are far smaller.
const maxPacket = 1500

// defaultClockRate is the RTP clock of the narrowband audio codecs (PCMU,
// PCMA, G.729, telephone-event; RFC 3551 §4.5) and of G.722 by convention.
const defaultClockRate = 8000

// EndpointConfig says where an endpoint binds and what it advertises.
type EndpointConfig struct {
	// IP is the local address the RTP and RTCP sockets bind to.
	IP netip.Addr
	// Advertise is the address written into SDP for this endpoint; the zero
	// value means IP. It must be set when IP is unspecified (0.0.0.0, ::).
	Advertise netip.Addr
	// Latching says which sources the endpoint takes its party's media
	// from; the zero value is LatchStrict.
	Latching Latching
	// Log receives the endpoint's rare events (latching, close); nil means
	// no logging. Nothing is logged per packet.
	Log *zap.Logger
}

// Endpoint is callctl's media end facing one party: an RTP socket on an even
// port and an RTCP socket on the port above it, both read by one of the
// package's pollers (poller.go) until Close. What arrives is counted and, when the endpoint
// is connected (see Connect), relayed out of the peer endpoint. What the
// endpoint sends forms one RTP stream with callctl's own SSRC, sequence
// numbers and timestamps: relayed packets, packets injected with WriteRTP,
// or music on hold (StartMusic), which a goroutine of the endpoint's own
// plays until StopMusic or Close.
//
// All methods are safe for concurrent use.
type Endpoint struct {
	pool      *PortPool
	port      int
	advertise netip.Addr
	latching  Latching
	log       *zap.Logger
	// warnedForeign is set once a refused source has been logged.
	warnedForeign atomic.Bool

	rtp, rtcp path
	// peer is the endpoint that sends out what this one receives.
	peer atomic.Pointer[Endpoint]
	out  outStream
	// tap is the SetEventTap callback, or nil.
	tap atomic.Pointer[eventTap]
	// forks are the AddFork callbacks, or nil; replaced, never changed,
	// under forkMu.
	forks  atomic.Pointer[forkList]
	forkMu sync.Mutex

	// srtpIn decrypts what the party sends; nil on a plain-RTP leg (see
	// srtp.go, and outStream.srtp for the sending side).
	srtpIn atomic.Pointer[srtpReceiver]

	// playing is set while music plays: the peer's relay then drops what
	// they would relay into e.
	playing atomic.Bool
	// muted is set by MuteRelay: the peer's relay then drops what it
	// would relay into e.
	muted   atomic.Bool
	musicMu sync.Mutex   // serialises StartMusic, StopMusic and Close
	music   *musicPlayer // guarded by musicMu; nil when none plays
	musicN  uint32       // guarded by musicMu; numbers players, so each is a new source

	in      inCounters
	outStat outCounters

	// slot and poller read the sockets; rx follows the received sequence
	// numbers and is touched only by the poller's goroutine.
	slot   *pollerSlot
	poller *poller
	rx     rxSequence

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// path is one of the endpoint's sockets and the address it sends to.
type path struct {
	sock   *udpSocket
	remote atomic.Pointer[remote] // never nil after newEndpoint
}

// inCounters are written by the poller reading the endpoint.
type inCounters struct {
	packets, bytes atomic.Uint64
	rtcp           atomic.Uint64
	dropped        atomic.Uint64
	foreign        atomic.Uint64
	srtpDropped    atomic.Uint64
	lost           atomic.Int64
	lastRTP        atomic.Int64 // unix ns
	lastAny        atomic.Int64 // unix ns, RTP or RTCP
	_              [64]byte     // keep the peer's writes to outCounters off this cache line
}

// outCounters are written by whoever sends through the endpoint: the peer's
// poller and WriteRTP.
type outCounters struct {
	packets, bytes atomic.Uint64
	rtcp           atomic.Uint64
}

// Stats is a snapshot of an endpoint's counters.
type Stats struct {
	// PacketsIn and BytesIn count valid RTP accepted from the party (UDP
	// payload bytes; on an SRTP leg the decrypted RTP, without the
	// authentication tag), relayed or not.
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut count RTP sent to the party, relayed or
	// injected with WriteRTP.
	PacketsOut, BytesOut uint64
	// RTCPIn and RTCPOut count RTCP packets (compound packets count once),
	// on the RTCP socket or multiplexed on the RTP one.
	RTCPIn, RTCPOut uint64
	// Lost counts RTP packets missing from the received sequence numbers
	// (expected minus received, RFC 3550 §6.4.1), per SSRC, summed.
	Lost uint64
	// Dropped counts packets received but not relayed: malformed ones
	// (shorter than an RTP header, not version 2) and ones from a source
	// other than the latched one, which count nowhere else; and accepted
	// ones that found no connected peer, no address to go to, or a peer
	// playing music on hold.
	Dropped uint64
	// Foreign counts the packets of Dropped that came from a source the
	// latching rules refused (see Latching).
	Foreign uint64
	// SRTPDropped counts the packets of Dropped that failed SRTP or SRTCP
	// authentication or replay protection (RFC 3711 §3.3), on an SRTP leg.
	SRTPDropped uint64
	// LastIn is when the last RTP packet was received; zero if none yet.
	LastIn time.Time
}

func newEndpoint(pool *PortPool, port int, adv netip.Addr, rtpSock, rtcpSock *udpSocket, cfg EndpointConfig) (*Endpoint, error) {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	e := &Endpoint{
		pool:      pool,
		port:      port,
		advertise: adv,
		latching:  cfg.Latching,
		log:       log.WithLazy(zap.Int("rtp_port", port)),
	}
	e.rtp.sock, e.rtcp.sock = rtpSock, rtcpSock
	e.rtp.remote.Store(&remote{})
	e.rtcp.remote.Store(&remote{})
	e.out.init(time.Now())

	e.slot = pickPoller()
	if err := e.slot.register(e); err != nil {
		_ = errors.Join(rtpSock.close(), rtcpSock.close())
		return nil, err
	}
	e.log.Debug("media endpoint open", zap.Stringer("advertise", adv), zap.Uint32("ssrc", e.out.ssrc))
	return e, nil
}

// Port returns the RTP port; RTCP is on Port()+1.
func (e *Endpoint) Port() int { return e.port }

// Advertise returns the address to write into SDP for this endpoint.
func (e *Endpoint) Advertise() netip.Addr { return e.advertise }

// SSRC returns the synchronization source of the stream this endpoint sends.
func (e *Endpoint) SSRC() uint32 { return e.out.ssrc }

// SetRemote sets where to send RTP and RTCP, as the party's SDP says (an
// invalid or unspecified address, or port 0, means unknown), and which
// sources to take them from (see Latching). An address that differs from
// the last SDP's forgets the latch of its path: the next packet the rules
// accept latches again; the same address keeps it. Call it for every offer
// or answer from the party, since a new SDP may move its media.
func (e *Endpoint) SetRemote(rtp, rtcp netip.AddrPort) {
	e.rtp.setSDP(unmapAddrPort(rtp))
	e.rtcp.setSDP(unmapAddrPort(rtcp))
}

// Remote returns where RTP and RTCP are sent now: the latched source
// addresses, or the SDP ones until the party's first packets arrive.
func (e *Endpoint) Remote() (rtp, rtcp netip.AddrPort) {
	return e.rtp.remote.Load().addr, e.rtcp.remote.Load().addr
}

// Stats returns a snapshot of the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	s := Stats{
		PacketsIn:   e.in.packets.Load(),
		BytesIn:     e.in.bytes.Load(),
		PacketsOut:  e.outStat.packets.Load(),
		BytesOut:    e.outStat.bytes.Load(),
		RTCPIn:      e.in.rtcp.Load(),
		RTCPOut:     e.outStat.rtcp.Load(),
		Dropped:     e.in.dropped.Load(),
		Foreign:     e.in.foreign.Load(),
		SRTPDropped: e.in.srtpDropped.Load(),
		LastIn:      unixNano(e.in.lastRTP.Load()),
	}
	if lost := e.in.lost.Load(); lost > 0 {
		s.Lost = uint64(lost)
	}
	return s
}

// LastActivity returns when the last RTP or RTCP packet was accepted from
// the party (zero if none yet), for the media timeout.
func (e *Endpoint) LastActivity() time.Time { return unixNano(e.in.lastAny.Load()) }

// Close stops the music, takes the sockets off their poller (waiting for a
// packet being handled to be done), removes the forks (AddFork), closes both
// sockets and hands the port pair back to the pool, where it rests before
// reuse. Packets a connected peer still relays toward a closed endpoint are
// dropped. Close is idempotent; later calls return the first call's result.
// It must not be called from an event tap or a fork callback, which run on
// the poller that Close waits for.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.StopMusic()
		e.peer.Store(nil)
		e.tap.Store(nil)
		e.clearForks()
		e.slot.unregister(e)
		e.closeErr = errors.Join(e.rtp.sock.close(), e.rtcp.sock.close())
		e.pool.release(e.port)
		e.log.Debug("media endpoint closed", zap.Object("stats", e.Stats()))
	})
	return e.closeErr
}

// readRTPOnce handles one datagram from the RTP socket, if one is queued;
// p's goroutine calls it when the socket is readable.
func (e *Endpoint) readRTPOnce(p *poller, now time.Time) {
	n, src, err := e.rtp.sock.readFrom(p.buf[:], &p.sa)
	if err != nil {
		return // nothing queued, or transient (ICMP-induced): UDP reads do not otherwise fail
	}
	if hook := e.pool.packetHook.Load(); hook != nil {
		(*hook)()
	}
	e.receiveRTP(p.buf[:n], src, &e.rx, now)
}

// readRTCPOnce is readRTPOnce for the RTCP socket.
func (e *Endpoint) readRTCPOnce(p *poller, now time.Time) {
	n, src, err := e.rtcp.sock.readFrom(p.buf[:], &p.sa)
	if err != nil {
		return
	}
	if hook := e.pool.packetHook.Load(); hook != nil {
		(*hook)()
	}
	e.receiveRTCP(p.buf[:n], src, now)
}

// rxSequence follows the sequence numbers received on one RTP socket to
// count losses (RFC 3550 Appendix A.1, simplified: no probation).
type rxSequence struct {
	started bool
	ssrc    uint32
	maxSeq  uint16
}

// RFC 3550 Appendix A.1 limits: a larger jump is a restart, not a loss.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// lost returns the change in the lost-packet count that a packet with this
// SSRC and sequence number makes: the gap before it, or -1 for a late one
// (it was counted lost when the gap opened).
func (r *rxSequence) lost(ssrc uint32, seq uint16) int64 {
	if !r.started || ssrc != r.ssrc {
		r.started, r.ssrc, r.maxSeq = true, ssrc, seq
		return 0
	}
	d := int(int16(seq - r.maxSeq))
	switch {
	case d > 0 && d <= maxDropout:
		r.maxSeq = seq
		return int64(d - 1)
	case d == 0: // duplicate
		return 0
	case d < 0 && d >= -maxMisorder:
		return -1
	default: // the source jumped: resynchronise without counting
		r.maxSeq = seq
		return 0
	}
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// unmapAddrPort normalises an SDP address for comparison with packet
// sources; an unspecified address or port 0 means unknown.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() || ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// newSSRC picks a random SSRC (RFC 3550 §8.1).
func newSSRC() uint32 { return rand.Uint32() }

// MarshalLogObject lets a Stats be logged with zap.Object.
func (s Stats) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddUint64("packets_in", s.PacketsIn)
	enc.AddUint64("bytes_in", s.BytesIn)
	enc.AddUint64("packets_out", s.PacketsOut)
	enc.AddUint64("bytes_out", s.BytesOut)
	enc.AddUint64("rtcp_in", s.RTCPIn)
	enc.AddUint64("rtcp_out", s.RTCPOut)
	enc.AddUint64("lost", s.Lost)
	enc.AddUint64("dropped", s.Dropped)
	enc.AddUint64("foreign", s.Foreign)
	if s.SRTPDropped > 0 {
		enc.AddUint64("srtp_dropped", s.SRTPDropped)
	}
	if !s.LastIn.IsZero() {
		enc.AddTime("last_in", s.LastIn)
	}
	return nil
}
