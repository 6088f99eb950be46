package media

import (
	"fmt"
	"net/netip"

	"go.uber.org/zap"
)

// Latching says which sources an endpoint takes a party's media from.
// Either way a packet that is refused is dropped and counted
// (Stats.Foreign, PortPool.ForeignDropped): a stray or forged stream must
// not take over a call's audio ("RTP bleed").
type Latching uint8

const (
	// LatchStrict, the default, takes RTP and RTCP only from the IP
	// address the party's SDP gave. The port latches onto the first packet
	// from that address, for a phone that sends from another port than it
	// receives on, or a NAT that keeps the address and moves the port.
	LatchStrict Latching = iota
	// LatchNAT is for parties behind NAT whose SDP carries a private
	// address: the first packet after an SDP latches the path from any
	// source, once. Until the party's SDP changes its address, only that
	// source is taken, or the SDP address itself, which may always take
	// the latch back.
	LatchNAT
)

// Latching names, as in the media.latching setting.
const (
	LatchStrictName = "strict"
	LatchNATName    = "nat"
)

// ParseLatching reads the media.latching setting.
func ParseLatching(s string) (Latching, error) {
	switch s {
	case LatchStrictName, "":
		return LatchStrict, nil
	case LatchNATName:
		return LatchNAT, nil
	}
	return 0, fmt.Errorf("media.latching: %q is not a latching mode (allowed: %s, %s): %w",
		s, LatchStrictName, LatchNATName, ErrInvalidArgument)
}

func (l Latching) String() string {
	if l == LatchNAT {
		return LatchNATName
	}
	return LatchStrictName
}

// remote is the send address of a path. Until latched it is the address
// from SDP (possibly unknown); the first accepted packet replaces it with
// the packet's source (symmetric RTP, RFC 4961 §3).
type remote struct {
	sdp     netip.AddrPort // as the party's SDP gave it; invalid when unknown
	addr    netip.AddrPort // where to send: the latched source, else sdp
	latched bool
}

// setSDP points the path at a party's new SDP address. The same address
// again (a hold, an unhold, a session refresh) keeps the latch: only an SDP
// that moves the party's media may move it, so a re-INVITE never re-opens
// the call to whoever sprays its port first.
func (p *path) setSDP(sdp netip.AddrPort) {
	if r := p.remote.Load(); sdp.IsValid() && r.sdp == sdp {
		return
	}
	p.remote.Store(&remote{sdp: sdp, addr: sdp})
}

// accept reports whether a packet from src belongs to the party, latching
// the path onto src when the rules allow. partyIP, when valid, is another
// address known to be the party's (RTP's latched source, for RTCP).
func (e *Endpoint) accept(p *path, src netip.AddrPort, partyIP netip.Addr, what string) bool {
	r := p.remote.Load()
	if r.latched && src == r.addr {
		return true // every packet of a call in progress
	}
	if !e.mayLatch(r, src, partyIP) {
		e.foreign(r, src, what)
		return false
	}
	// Losing this race to setSDP is harmless: the next packet latches.
	if p.remote.CompareAndSwap(r, &remote{sdp: r.sdp, addr: src, latched: true}) && r.addr != src {
		e.log.Debug("media latched", zap.String("socket", what),
			zap.Stringer("sdp", r.sdp), zap.Stringer("source", src))
	}
	return true
}

// mayLatch applies e's Latching to a packet from src that is not from the
// latched source.
func (e *Endpoint) mayLatch(r *remote, src netip.AddrPort, partyIP netip.Addr) bool {
	switch {
	case r.latched:
		return src == r.sdp // the SDP's own address may take the latch back
	case r.sdp.IsValid() && src.Addr() == r.sdp.Addr():
		return true
	case e.latching != LatchNAT:
		return false
	case partyIP.IsValid():
		return src.Addr() == partyIP
	default:
		return true // NAT: the first packet after an SDP, from anywhere
	}
}

// foreign counts a packet refused by the latching rules and logs the first
// one of the endpoint: once, as a sprayer would otherwise fill the log.
func (e *Endpoint) foreign(r *remote, src netip.AddrPort, what string) {
	e.in.dropped.Add(1)
	e.in.foreign.Add(1)
	e.pool.foreign.Add(1)
	if e.warnedForeign.CompareAndSwap(false, true) {
		want := "nothing (no SDP address yet)"
		if r.sdp.IsValid() {
			want = r.sdp.String()
		}
		if r.latched {
			want = r.addr.String()
		}
		e.log.Warn("media from a source that is not the party's dropped (further ones are counted, not logged)",
			zap.String("socket", what), zap.Stringer("source", src), zap.String("expected", want),
			zap.Stringer("latching", e.latching))
	}
}
