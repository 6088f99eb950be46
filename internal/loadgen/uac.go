package loadgen

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Caller-side call states.
const (
	uacInviting = iota
	uacAnswered
	uacEnding // BYE sent
	uacDone
)

// uacCall is one call of the caller side. Its mutex guards everything;
// the SIP reader and the scheduler both drive it.
type uacCall struct {
	g      *Generator
	idx    int
	number string
	callID string
	tag    string
	media  *mediaSocket

	mu          sync.Mutex
	state       int
	ruri        string
	invite      []byte
	inviteAt    int64
	answered    int64
	provisional bool
	toHeader    []byte // To of the 2xx, with the callee's tag
	target      string // remote target (Contact of the 2xx)
	ack         []byte
	bye         []byte
	byeAt       int64
	out         *stream
	sessVersion uint64
	reinv       reinviteState
	session     string // callctl session id, once looked up
	nextCSeq    int    // of the next request in the dialog (PRACK, BYE)
	prackedRSeq uint32 // RSeq of the reliable provisional PRACKed
	prack       []byte // that PRACK, sent again for each retransmission of it
}

// extensionHeaders are the caller's INVITE headers with Config.Extensions:
// it requires reliable provisionals (RFC 3262 4) and asks for a session
// timer (RFC 4028 7.1), as Asterisk with 100rel=required and
// session-timers=originate does.
const extensionHeaders = "Require: 100rel\r\nSupported: timer\r\nSession-Expires: 1800\r\nMin-SE: 90\r\n"

// place starts call i: INVITE with a PCMU offer to the target.
func (g *Generator) place(i int) {
	c := &uacCall{g: g, idx: i, number: g.number(i), media: mediaFor(g.uacMedia, i), nextCSeq: 2}
	c.callID = g.runID + "-" + strconv.Itoa(i) + "@callctl-load"
	c.tag = g.runID[:6] + strconv.Itoa(i)
	c.ruri = "sip:" + c.number + "@" + g.target.String()
	c.sessVersion = uint64(i) + 1
	port := 9 // discard: no RTP
	if c.media != nil {
		port = int(c.media.addr.Port())
	}
	sdp := appendSDP(nil, g.cfg.IP, port, c.sessVersion, c.sessVersion, "sendrecv", telephoneEventPT)
	b := make([]byte, 0, 1024)
	b = append(b, "INVITE "...)
	b = append(b, c.ruri...)
	b = append(b, " SIP/2.0\r\n"...)
	b = c.appendVia(b, "i")
	b = append(b, "Max-Forwards: 70\r\nFrom: <sip:"...)
	b = append(b, g.cfg.Caller...)
	b = append(b, '@')
	b = append(b, g.cfg.IP...)
	b = append(b, ">;tag="...)
	b = append(b, c.tag...)
	b = append(b, "\r\nTo: <"...)
	b = append(b, c.ruri...)
	b = append(b, ">\r\nCall-ID: "...)
	b = append(b, c.callID...)
	b = append(b, "\r\nCSeq: 1 INVITE\r\nContact: <sip:"...)
	b = append(b, g.cfg.Caller...)
	b = append(b, '@')
	b = append(b, g.uacAddr.String()...)
	b = append(b, ">\r\nUser-Agent: callctl-load\r\n"...)
	if g.cfg.Extensions {
		b = append(b, extensionHeaders...)
	}
	b = append(b, "Content-Type: application/sdp\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(sdp)), 10)
	b = append(b, "\r\n\r\n"...)
	c.invite = append(b, sdp...)

	g.mu.Lock()
	g.uacCalls[c.callID] = c
	g.mu.Unlock()
	g.calls.Add(1)
	g.attempted.Add(1)
	if n := g.active.Add(1); n > g.peak.Load() {
		g.peak.Store(n) // racy max, close enough for a peak
	}
	c.mu.Lock()
	c.inviteAt = nanotime()
	send(g.uacConn, c.invite, g.target)
	c.mu.Unlock()
	g.sched.after(timerT1, func() { c.retransmitInvite(timerT1) })
}

func (c *uacCall) appendVia(b []byte, kind string) []byte {
	b = append(b, "Via: SIP/2.0/UDP "...)
	b = append(b, c.g.uacAddr.String()...)
	b = append(b, ";branch=z9hG4bK"...)
	b = append(b, c.g.runID...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(c.idx), 10)
	b = append(b, kind...)
	b = append(b, ";rport\r\n"...)
	return b
}

// retransmitInvite is Timer A/B (RFC 3261 §17.1.1.2).
func (c *uacCall) retransmitInvite(every time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != uacInviting {
		return
	}
	if time.Duration(nanotime()-c.inviteAt) >= c.g.cfg.SetupTimeout {
		c.finishLocked("timeout: no final answer to INVITE")
		return
	}
	if !c.provisional {
		send(c.g.uacConn, c.invite, c.g.target)
		every *= 2
	} else {
		every = timerT2
	}
	c.g.sched.after(every, func() { c.retransmitInvite(every) })
}

// uacMessage handles a datagram arriving at the caller side.
func (g *Generator) uacMessage(m *sipMsg, src netip.AddrPort) {
	g.mu.Lock()
	c := g.uacCalls[string(m.callID)]
	g.mu.Unlock()
	if c == nil {
		if m.request && !bytes.Equal(m.method, []byte("ACK")) {
			send(g.uacConn, appendResponse(nil, m.head(), 481, "Call/Transaction Does Not Exist", "", nil, "", nil), src)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.request {
		c.requestLocked(m, src)
		return
	}
	switch string(m.method) {
	case "INVITE":
		c.inviteResponseLocked(m)
	case "BYE":
		if c.state == uacEnding && m.status >= 200 {
			if m.status < 300 {
				c.finishLocked("")
			} else {
				c.finishLocked("BYE answered " + strconv.Itoa(m.status))
			}
		}
	}
}

func (c *uacCall) inviteResponseLocked(m *sipMsg) {
	g := c.g
	switch {
	case m.status < 200:
		c.provisional = true
		if m.rseq != 0 && m.require100rel && c.state == uacInviting {
			c.prackLocked(m)
		}
	case m.status < 300:
		if c.state != uacInviting {
			if c.ack != nil {
				send(g.uacConn, c.ack, g.target) // the 2xx was retransmitted: our ACK was lost
			}
			return
		}
		now := nanotime()
		g.mu.Lock()
		g.setup.Record(now - c.inviteAt)
		g.mu.Unlock()
		g.answered.Add(1)
		c.answered = now
		c.state = uacAnswered
		c.toHeader = clone(m.to)
		if g.cfg.Extensions && m.sessionExpires != nil {
			g.ext.callerTimers.Add(1)
		}
		c.target = string(m.contactURI)
		if c.target == "" {
			c.target = c.ruri
		}
		c.ack = c.buildLocked("ACK", 1, "a", nil, nil)
		send(g.uacConn, c.ack, g.target)
		if c.media != nil {
			if sdp, err := parseSDP(m.body); err == nil {
				if dst, ok := mediaDst(sdp); ok && mayRTP(sdp.dir) {
					c.out = newStream(g.table, dst)
					if g.cfg.DTMF != "" {
						c.out.dtmf = dtmfPlan(g.cfg.DTMF)
						c.out.dtmfAt = uint32(g.cfg.DTMFAt / packetTime)
					}
					c.media.start(c.out)
				}
			} else {
				g.countFailure("answer without usable SDP (call kept)")
			}
		}
		hold := g.cfg.Hold
		select {
		case <-g.stopAll: // Run is ending: hang up at once
			hold = 0
		default:
		}
		g.sched.after(hold-min(g.cfg.Drain, hold), c.stopMedia)
		g.sched.after(hold, c.hangUp)
		if g.api != nil {
			g.apiOps(c)
		}
	default:
		// Non-2xx final: ACK in the INVITE's transaction (§17.1.1.3).
		if c.state != uacInviting {
			return
		}
		c.toHeader = clone(m.to)
		send(g.uacConn, c.buildLocked("ACK", 1, "i", nil, nil), g.target)
		c.finishLocked("INVITE answered " + strconv.Itoa(m.status))
	}
}

// requestLocked answers a request from the target in the call's dialog.
func (c *uacCall) requestLocked(m *sipMsg, src netip.AddrPort) {
	g := c.g
	switch string(m.method) {
	case "ACK":
		c.reinv.onACK(g, m)
	case "BYE":
		send(g.uacConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
		switch c.state {
		case uacAnswered:
			c.stopMediaLocked()
			c.finishLocked("BYE from the target before hang-up")
		case uacEnding:
			c.finishLocked("")
		}
	case "INVITE":
		c.reinv.onInvite(g, g.uacConn, m, src, func() []byte {
			g.reinv.caller.Add(1)
			resp := answerReinvite(g, m, g.cfg.Caller, c.media, c.out, c.sessVersionID(), &c.sessVersion, g.uacAddr)
			// RFC 3261 12.2.2: an accepted re-INVITE is a target refresh
			// (callctl started again sends its Contact, the same address).
			if u := m.contactURI; len(u) > 0 && isOK(resp) {
				c.target = string(u)
			}
			return resp
		}, &c.mu, func() bool { return c.state == uacDone })
	default:
		send(g.uacConn, appendResponse(nil, m.head(), 200, "OK", "", nil, "", nil), src)
	}
}

func (c *uacCall) sessVersionID() uint64 { return uint64(c.idx) + 1 }

// prackLocked acknowledges a reliable provisional (RFC 3262 7.2): PRACK in
// its early dialog, RAck naming its RSeq and the INVITE's CSeq. A
// retransmission of the provisional already PRACKed gets the same PRACK
// again (a retransmission of that request, as its transaction would
// send); a later one is not looked at (one 18x per call here).
func (c *uacCall) prackLocked(m *sipMsg) {
	switch {
	case m.rseq == c.prackedRSeq:
		send(c.g.uacConn, c.prack, c.g.target)
		return
	case c.prackedRSeq != 0:
		return
	}
	c.prackedRSeq = m.rseq
	c.toHeader = clone(m.to)
	c.target = string(m.contactURI)
	rack := []byte("RAck: " + strconv.FormatUint(uint64(m.rseq), 10) + " 1 INVITE\r\n")
	c.prack = c.buildLocked("PRACK", c.nextCSeq, "p", rack, nil)
	c.nextCSeq++
	c.g.ext.callerPRACKs.Add(1)
	send(c.g.uacConn, c.prack, c.g.target)
}

// buildLocked makes an in-dialog request (ACK, PRACK, BYE) with the given
// CSeq, branch suffix and extra header lines. ACK of a non-2xx goes to the
// INVITE's Request-URI.
func (c *uacCall) buildLocked(method string, cseq int, branch string, extra, body []byte) []byte {
	ruri := c.target
	if ruri == "" || branch == "i" {
		ruri = c.ruri
	}
	b := make([]byte, 0, 512)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, ruri...)
	b = append(b, " SIP/2.0\r\n"...)
	b = c.appendVia(b, branch)
	b = append(b, "Max-Forwards: 70\r\nFrom: <sip:"...)
	b = append(b, c.g.cfg.Caller...)
	b = append(b, '@')
	b = append(b, c.g.cfg.IP...)
	b = append(b, ">;tag="...)
	b = append(b, c.tag...)
	b = append(b, "\r\nTo: "...)
	b = append(b, c.toHeader...)
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, c.callID...)
	b = append(b, "\r\nCSeq: "...)
	b = strconv.AppendInt(b, int64(cseq), 10)
	b = append(b, ' ')
	b = append(b, method...)
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// stopMedia stops both directions of the call's RTP a little before the
// BYE, so that nothing is in flight when the call is torn down.
func (c *uacCall) stopMedia() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == uacAnswered {
		c.stopMediaLocked()
	}
}

func (c *uacCall) stopMediaLocked() {
	if c.out != nil {
		c.out.state.Store(streamStopped)
	}
	c.g.mu.Lock()
	far := c.g.links[c.number]
	c.g.mu.Unlock()
	if far != nil {
		far.stopMedia()
	}
}

// hangUp sends the BYE (or, before the answer, waits for it: a CANCEL race
// is not worth measuring) and retransmits it until answered.
func (c *uacCall) hangUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != uacAnswered {
		return
	}
	c.stopMediaLocked()
	c.state = uacEnding
	c.bye = c.buildLocked("BYE", c.nextCSeq, "b", nil, nil)
	c.nextCSeq++
	c.byeAt = nanotime()
	send(c.g.uacConn, c.bye, c.g.target)
	c.g.sched.after(timerT1, func() { c.retransmitBye(timerT1) })
}

// retransmitBye is Timer E/F (RFC 3261 §17.1.2.2).
func (c *uacCall) retransmitBye(every time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != uacEnding {
		return
	}
	if time.Duration(nanotime()-c.byeAt) >= byeTimeout {
		c.finishLocked("timeout: no answer to BYE")
		return
	}
	send(c.g.uacConn, c.bye, c.g.target)
	every = min(every*2, timerT2)
	c.g.sched.after(every, func() { c.retransmitBye(every) })
}

// finishLocked ends the call once: ok when failure is empty.
func (c *uacCall) finishLocked(failure string) {
	if c.state == uacDone {
		return
	}
	g := c.g
	if c.out != nil {
		c.out.state.Store(streamStopped)
	}
	c.state = uacDone
	if failure == "" {
		g.ok.Add(1)
	} else {
		g.failed.Add(1)
		g.countFailure(failure)
	}
	g.active.Add(-1)
	if g.slots != nil {
		<-g.slots
	}
	g.sched.after(lingering, func() {
		g.mu.Lock()
		delete(g.uacCalls, c.callID)
		g.mu.Unlock()
	})
	g.calls.Done()
}

func (c *uacCall) String() string { return fmt.Sprintf("call %d (%s)", c.idx, c.number) }
