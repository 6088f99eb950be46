package loadgen

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// uasCall is one call of the callee side: the dialog the target opened
// toward the generator's UAS.
type uasCall struct {
	g      *Generator
	idx    int
	callID string
	number string
	tag    string
	src    netip.AddrPort // where the target's requests come from
	media  *mediaSocket

	mu          sync.Mutex
	inv         reqHead // the initial INVITE, kept for responses
	inviteCSeq  uint32
	last        []byte // last response to the INVITE
	okAt        int64
	acked       bool
	cancelled   bool
	ended       bool
	dst         netip.AddrPort
	sendOK      bool
	out         *stream
	sessVersion uint64
	reinv       reinviteState

	// With Config.Extensions and an INVITE that supports 100rel, the 180
	// is sent reliably and the 200 waits for its PRACK (and the ring time).
	reliable  bool
	relAt     int64  // when the reliable 180 was first sent
	pracked   bool   // its PRACK arrived
	ringDone  bool   // the ring time is over
	pendingOK []byte // the 200 to send once both are true
}

// uasMessage handles a datagram arriving at the callee side.
func (g *Generator) uasMessage(m *sipMsg, src netip.AddrPort) {
	if !m.request {
		return // the UAS sends no requests
	}
	g.mu.Lock()
	c := g.uasCalls[string(m.callID)]
	g.mu.Unlock()
	method := string(m.method)
	if c == nil {
		switch {
		case method == "INVITE" && m.toTag == nil:
			g.newUASCall(m, src)
		case method == "ACK":
		case method == "OPTIONS":
			send(g.uasConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
		default:
			g.countUAS(method + " for an unknown dialog")
			send(g.uasConn, appendResponse(nil, m.head(), 481, "Call/Transaction Does Not Exist", "", nil, "", nil), src)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch method {
	case "INVITE":
		if m.toTag == nil { // the initial INVITE again: our answer was lost
			if c.last != nil {
				send(g.uasConn, c.last, src)
			}
			return
		}
		c.reinv.onInvite(g, g.uasConn, m, src, func() []byte {
			g.reinv.callee.Add(1)
			return answerReinvite(g, m, "uas", c.media, c.out, uint64(c.idx)+1, &c.sessVersion, g.uasAddr)
		}, &c.mu, func() bool { return c.ended })
	case "PRACK":
		// RFC 3262 3: the PRACK of the reliable 180 (RAck "1 <cseq> INVITE").
		send(g.uasConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
		if c.reliable && !c.pracked && bytes.HasPrefix(m.rack, []byte("1 ")) {
			c.pracked = true
			g.ext.calleePRACKed.Add(1)
			c.maybeAnswerLocked()
		}
	case "ACK":
		if c.reinv.onACK(g, m) {
			return
		}
		if m.cseq == c.inviteCSeq && !c.acked && c.okAt != 0 {
			c.acked = true
			c.startMediaLocked()
		}
	case "BYE":
		send(g.uasConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
		c.endLocked()
	case "CANCEL":
		send(g.uasConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
		if c.okAt == 0 && !c.cancelled {
			c.cancelled = true
			c.last = appendResponse(nil, c.inv, 487, "Request Terminated", c.tag, nil, "", nil)
			send(g.uasConn, c.last, c.src)
			c.endLocked()
		}
	default:
		send(g.uasConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
	}
}

// newUASCall answers a new INVITE: 180 at once, 200 with our SDP after the
// ring time.
func (g *Generator) newUASCall(m *sipMsg, src netip.AddrPort) {
	idx := int(g.uasCallsSeen.Add(1))
	c := &uasCall{g: g, idx: idx, callID: string(m.callID), src: src, inv: m.head().clone(), inviteCSeq: m.cseq,
		tag: g.runID[6:] + strconv.Itoa(idx), media: mediaFor(g.uasMedia, idx)}
	if u := m.ruri; bytes.HasPrefix(u, []byte("sip:")) {
		u = u[4:]
		if at := bytes.IndexByte(u, '@'); at >= 0 {
			c.number = string(u[:at])
		}
	}
	if strings.HasPrefix(c.number, FloodNumberPrefix) {
		// A flood's call that the target let through: no such number,
		// as a PBX answers a scanner.
		send(g.uasConn, appendResponse(nil, m.head(), 404, "Not Found", c.tag, nil, "", nil), src)
		return
	}
	offer, err := parseSDP(m.body)
	if err != nil || !offer.hasPCMU {
		g.countUAS("INVITE without a PCMU offer")
		send(g.uasConn, appendResponse(nil, m.head(), 488, "Not Acceptable Here", c.tag, nil, "", nil), src)
		return
	}
	c.dst, c.sendOK = mediaDst(offer)
	c.sendOK = c.sendOK && mayRTP(offer.dir)
	g.mu.Lock()
	g.uasCalls[c.callID] = c
	if c.number != "" {
		g.links[c.number] = c
	}
	g.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	ext := g.cfg.Extensions
	c.reliable = ext && m.support100rel
	ringing := c.contact()
	if c.reliable {
		ringing = append(ringing, "Require: 100rel\r\nRSeq: 1\r\n"...)
	}
	c.last = appendResponse(nil, c.inv, 180, "Ringing", c.tag, ringing, "", nil)
	send(g.uasConn, c.last, src)
	if c.reliable {
		g.ext.calleeReliable.Add(1)
		c.relAt = nanotime()
		g.sched.after(timerT1, func() { c.retransmitReliable(timerT1) })
	}
	port := 9
	if c.media != nil {
		port = int(c.media.addr.Port())
	}
	c.sessVersion = uint64(idx) + 1
	sdp := appendSDP(nil, g.cfg.IP, port, c.sessVersion, c.sessVersion, answerDir(offer.dir), offer.eventPT)
	okHeaders := c.contact()
	if ext {
		okHeaders = append(okHeaders, "Supported: 100rel, timer\r\n"...)
		if delta := timerDelta(m.sessionExpires); delta != "" {
			g.ext.calleeTimer.Add(1)
			// RFC 4028 9: the UAS takes the interval and leaves the
			// refreshes to the UAC (callctl).
			okHeaders = append(okHeaders, "Session-Expires: "+delta+";refresher=uac\r\nRequire: timer\r\n"...)
		}
	}
	c.pendingOK = appendResponse(nil, c.inv, 200, "OK", c.tag, okHeaders, "application/sdp", sdp)
	if g.cfg.RingTime > 0 {
		g.sched.after(g.cfg.RingTime, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.ringDone = true
			c.maybeAnswerLocked()
		})
		return
	}
	c.ringDone = true
	c.maybeAnswerLocked()
}

// timerDelta is the delta-seconds of a Session-Expires value, or "".
func timerDelta(v []byte) string {
	if semi := bytes.IndexByte(v, ';'); semi >= 0 {
		v = v[:semi]
	}
	v = bytes.TrimSpace(v)
	if _, err := strconv.ParseUint(string(v), 10, 32); err != nil {
		return ""
	}
	return string(v)
}

// maybeAnswerLocked sends the 200 once the ring time is over and, for a
// reliable 180, its PRACK came. RFC 3262 3 would let a 2xx overtake a
// reliable 180 without SDP; PBXs wait, and so the PRACK is on the set-up
// path as it is in production.
func (c *uasCall) maybeAnswerLocked() {
	if c.pendingOK == nil || !c.ringDone || (c.reliable && !c.pracked) || c.cancelled || c.ended {
		return
	}
	ok := c.pendingOK
	c.pendingOK = nil
	c.answerLocked(ok)
}

// retransmitReliable resends the reliable 180 until its PRACK (RFC 3262 3:
// T1 doubling, for 64*T1).
func (c *uasCall) retransmitReliable(every time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pracked || c.ended || c.cancelled || c.okAt != 0 {
		return
	}
	if time.Duration(nanotime()-c.relAt) >= 64*timerT1 {
		c.g.countUAS("no PRACK for the reliable 180")
		c.last = appendResponse(nil, c.inv, 504, "Server Time-out", c.tag, nil, "", nil)
		send(c.g.uasConn, c.last, c.src)
		c.endLocked()
		return
	}
	send(c.g.uasConn, c.last, c.src)
	every *= 2
	c.g.sched.after(every, func() { c.retransmitReliable(every) })
}

func (c *uasCall) contact() []byte {
	return []byte("Contact: <sip:uas@" + c.g.uasAddr.String() + ">\r\n")
}

// answerLocked sends the 200 and retransmits it until the ACK (Timer G/H,
// RFC 3261 §17.2.1).
func (c *uasCall) answerLocked(ok []byte) {
	c.last = ok
	c.okAt = nanotime()
	send(c.g.uasConn, ok, c.src)
	c.g.sched.after(timerT1, func() { c.retransmitOK(timerT1) })
}

func (c *uasCall) retransmitOK(every time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acked || c.ended {
		return
	}
	if time.Duration(nanotime()-c.okAt) >= 64*timerT1 {
		c.g.countUAS("no ACK for 200 OK")
		c.endLocked()
		return
	}
	send(c.g.uasConn, c.last, c.src)
	every = min(every*2, timerT2)
	c.g.sched.after(every, func() { c.retransmitOK(every) })
}

func (c *uasCall) startMediaLocked() {
	if c.media == nil || !c.sendOK || c.ended {
		return
	}
	c.out = newStream(c.g.table, c.dst)
	c.media.start(c.out)
}

// stopMedia stops the callee's stream (the caller is about to hang up).
func (c *uasCall) stopMedia() {
	c.mu.Lock()
	if c.out != nil {
		c.out.state.Store(streamStopped)
	}
	c.mu.Unlock()
}

func (c *uasCall) endLocked() {
	if c.ended {
		return
	}
	c.ended = true
	if c.out != nil {
		c.out.state.Store(streamStopped)
	}
	g := c.g
	g.mu.Lock()
	if g.links[c.number] == c {
		delete(g.links, c.number)
	}
	g.mu.Unlock()
	g.sched.after(lingering, func() {
		g.mu.Lock()
		delete(g.uasCalls, c.callID)
		g.mu.Unlock()
	})
}
