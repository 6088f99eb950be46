package loadgen

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// reinviteState is the last in-dialog INVITE a side answered: kept to
// answer its retransmissions with the same response, and to retransmit
// the 2xx until its ACK arrives (RFC 3261 13.3.1.4: the UAS core, not the
// transaction, retransmits a 2xx, T1 doubling up to T2, for 64·T1). The
// call's mutex guards it.
type reinviteState struct {
	cseq  uint32
	resp  []byte
	to    netip.AddrPort
	okAt  int64
	acked bool
}

// reinviteCounters count the in-dialog INVITEs both sides answered.
type reinviteCounters struct {
	caller, callee atomic.Uint64 // answered 200, by side
	refused        atomic.Uint64 // answered 488: no usable offer
	moved          atomic.Uint64 // a stream sent to a new address from then on
	acked          atomic.Uint64 // the ACK of the 200 arrived
	noACK          atomic.Uint64 // 64·T1 without it
}

// ReinviteResult counts the in-dialog INVITEs (a hold, an unhold, a
// re-adoption after a restart: RFC 3261 14.2) the generator answered.
type ReinviteResult struct {
	CallerAnswered uint64 `json:"caller_answered"`
	CalleeAnswered uint64 `json:"callee_answered"`
	Refused        uint64 `json:"refused"`
	// MediaMoved counts answers after which a stream went to the new
	// address of the offer (RFC 3264 8.3.1).
	MediaMoved uint64 `json:"media_moved"`
	ACKed      uint64 `json:"acked"`
	NotACKed   uint64 `json:"not_acked"`
}

func (c *reinviteCounters) result() *ReinviteResult {
	r := &ReinviteResult{CallerAnswered: c.caller.Load(), CalleeAnswered: c.callee.Load(), Refused: c.refused.Load(),
		MediaMoved: c.moved.Load(), ACKed: c.acked.Load(), NotACKed: c.noACK.Load()}
	if r.CallerAnswered+r.CalleeAnswered+r.Refused == 0 {
		return nil
	}
	return r
}

// onInvite answers an in-dialog INVITE, with the call's lock (mu) held.
// A retransmission gets the response already sent; a new one is answered
// by answer, and its 2xx retransmitted until the ACK. gone reports, under
// mu, that the call has ended (no more retransmissions).
func (r *reinviteState) onInvite(g *Generator, conn *net.UDPConn, m *sipMsg, src netip.AddrPort, answer func() []byte, mu *sync.Mutex, gone func() bool) {
	if m.cseq == r.cseq && r.resp != nil {
		send(conn, r.resp, src)
		return
	}
	*r = reinviteState{cseq: m.cseq, resp: answer(), to: src}
	send(conn, r.resp, src)
	if !isOK(r.resp) {
		return
	}
	r.okAt = nanotime()
	cseq := r.cseq
	var again func(every time.Duration)
	again = func(every time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if r.cseq != cseq || r.acked || gone() {
			return
		}
		if time.Duration(nanotime()-r.okAt) >= 64*timerT1 {
			g.reinv.noACK.Add(1)
			g.countUAS("no ACK for a re-INVITE's 200")
			return
		}
		send(conn, r.resp, r.to)
		every = min(every*2, timerT2)
		g.sched.after(every, func() { again(every) })
	}
	g.sched.after(timerT1, func() { again(timerT1) })
}

// isOK reports whether a response the generator built is a 2xx.
func isOK(resp []byte) bool { return len(resp) > 8 && resp[8] == '2' } // "SIP/2.0 2xx"

// onACK takes the ACK of the answered re-INVITE, with the call's lock held;
// it reports whether the ACK was that one's.
func (r *reinviteState) onACK(g *Generator, m *sipMsg) bool {
	if r.resp == nil || m.cseq != r.cseq {
		return false
	}
	if !r.acked {
		r.acked = true
		g.reinv.acked.Add(1)
	}
	return true
}

// answerReinvite answers a re-INVITE (hold, unhold, a new media address)
// with our SDP in the direction that answers the offer, pauses or resumes
// our stream to match (RFC 3264 8.4), and sends it to the offer's address
// from then on (8.3.1: a callctl started again offers new relay ports).
// Shared by both sides.
func answerReinvite(g *Generator, m *sipMsg, user string, media *mediaSocket, out *stream, sessID uint64, version *uint64, contact netip.AddrPort) []byte {
	offer, err := parseSDP(m.body)
	if err != nil {
		g.reinv.refused.Add(1)
		return appendResponse(nil, m.head(), 488, "Not Acceptable Here", "", nil, "", nil)
	}
	dir := answerDir(offer.dir)
	if out != nil {
		if dst, ok := mediaDst(offer); ok && out.moveTo(dst) {
			g.reinv.moved.Add(1)
		}
		if mayRTP(offer.dir) {
			out.state.CompareAndSwap(streamPaused, streamSending)
		} else {
			out.state.CompareAndSwap(streamSending, streamPaused)
		}
	}
	port := 9
	if media != nil {
		port = int(media.addr.Port())
	}
	*version++
	sdp := appendSDP(nil, g.cfg.IP, port, sessID, *version, dir, offer.eventPT)
	extra := []byte("Contact: <sip:" + user + "@" + contact.String() + ">\r\n")
	return appendResponse(nil, m.head(), 200, "OK", "", extra, "application/sdp", sdp)
}

// CallResume is when audio flowed again on one call after a mark
// (Generator.WatchResume): the arrival of the first packet of each
// direction that was sent at or after the mark. A zero time: none yet.
type CallResume struct {
	Call           int       `json:"call"`
	CallerToCallee time.Time `json:"caller_to_callee"`
	CalleeToCaller time.Time `json:"callee_to_caller"`
	// Ended says the call was over when Resumed was read (a BYE from the
	// target, or its hang-up).
	Ended bool `json:"ended"`
}

// Both reports whether audio flows again both ways, and since when (the
// later direction).
func (c CallResume) Both() (time.Time, bool) {
	if c.CallerToCallee.IsZero() || c.CalleeToCaller.IsZero() {
		return time.Time{}, false
	}
	if c.CalleeToCaller.After(c.CallerToCallee) {
		return c.CalleeToCaller, true
	}
	return c.CallerToCallee, true
}

// watched is one call of a resume watch: its two streams.
type watched struct {
	call     *uacCall
	toCallee *stream // the caller's, received at the callee side
	toCaller *stream // the callee's, received at the caller side
}

// WatchResume marks t on every answered call with RTP both ways: from now
// on the generator notes, per direction, when the first packet sent at or
// after t arrives at the other side of its own call (Resumed); one that
// arrives at a socket of other calls is counted in RTPResult.Crossed
// instead (with more Config.MediaSockets, fewer calls share one). A benchmark calls it once the path the audio
// took is gone (the target killed), with t after that: no packet sent
// then can have taken the old path. A new call replaces the watch.
func (g *Generator) WatchResume(t time.Time) int {
	from := max(1, int64(t.Sub(epoch)))
	g.mu.Lock()
	calls := make([]*uacCall, 0, len(g.uacCalls))
	for _, c := range g.uacCalls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	var list []watched
	for _, c := range calls {
		c.mu.Lock()
		w := watched{call: c, toCallee: c.out}
		up := c.state == uacAnswered
		c.mu.Unlock()
		if !up || w.toCallee == nil {
			continue
		}
		g.mu.Lock()
		far := g.links[c.number]
		g.mu.Unlock()
		if far == nil {
			continue // the target did not call the callee side: no pair
		}
		far.mu.Lock()
		w.toCaller = far.out
		far.mu.Unlock()
		w.toCallee.receiver.Store(far.media)
		if w.toCaller != nil {
			w.toCaller.receiver.Store(c.media)
		}
		for _, s := range []*stream{w.toCallee, w.toCaller} {
			if s != nil {
				s.resumedAt.Store(0)
				s.resumeFrom.Store(from)
			}
		}
		list = append(list, w)
	}
	g.mu.Lock()
	g.watch = list
	g.mu.Unlock()
	return len(list)
}

// Resumed is, for each call of the last WatchResume, when audio flowed
// again each way; safe to call while Run runs.
func (g *Generator) Resumed() []CallResume {
	g.mu.Lock()
	list := g.watch
	g.mu.Unlock()
	out := make([]CallResume, 0, len(list))
	at := func(s *stream) time.Time {
		if s == nil {
			return time.Time{}
		}
		if ns := s.resumedAt.Load(); ns != 0 {
			return epoch.Add(time.Duration(ns))
		}
		return time.Time{}
	}
	for _, w := range list {
		w.call.mu.Lock()
		ended := w.call.state != uacAnswered
		w.call.mu.Unlock()
		out = append(out, CallResume{Call: w.call.idx, CallerToCallee: at(w.toCallee), CalleeToCaller: at(w.toCaller), Ended: ended})
	}
	return out
}

// EndCalls hangs up every answered call now, as at the end of its hold:
// its RTP stops, and Config.Drain later its BYE goes. Run returns once
// they are answered. For a benchmark that ends its calls when it has
// measured what it wanted rather than at a fixed hold time.
func (g *Generator) EndCalls() {
	g.mu.Lock()
	calls := make([]*uacCall, 0, len(g.uacCalls))
	for _, c := range g.uacCalls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	for _, c := range calls {
		c.stopMedia()
	}
	time.Sleep(g.cfg.Drain)
	for _, c := range calls {
		c.hangUp()
	}
}
