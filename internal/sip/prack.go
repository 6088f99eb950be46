package sip

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Option tags and reliable provisional responses (RFC 3262, RFC 3261
// 8.2.2.3).

// optionTags are the SIP extensions callctl supports: what it sends in
// Supported and accepts in Require. Add a tag here once it is really
// handled.
var optionTags = []string{"100rel", "timer"}

// supportedHeader is the Supported header callctl sends (RFC 3261 20.37).
var supportedHeader = strings.Join(optionTags, ", ")

func supportsOption(tag string) bool {
	for _, t := range optionTags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// maxOptionTags bounds how many option tags of one header list are looked
// at: the list is the network's.
const maxOptionTags = 32

// optionList returns the option tags of every header named name (and its
// compact form, RFC 3261 7.3.3) of m, lower-cased; tokens that are not
// SIP tokens are dropped.
func optionList(m headered, name string) []string {
	var out []string
	names := []string{name}
	switch strings.ToLower(name) {
	case "supported":
		names = append(names, "k")
	}
	for _, n := range names {
		for _, h := range m.GetHeaders(n) {
			for _, t := range strings.Split(h.Value(), ",") {
				t = strings.ToLower(strings.TrimSpace(t))
				if t == "" || !isToken(t) {
					continue
				}
				if len(out) == maxOptionTags {
					return out
				}
				out = append(out, t)
			}
		}
	}
	return out
}

// hasOption reports whether header name of m lists tag.
func hasOption(m headered, name, tag string) bool {
	for _, t := range optionList(m, name) {
		if t == tag {
			return true
		}
	}
	return false
}

// isToken reports whether s is a SIP token (RFC 3261 25.1), at most 64
// characters.
func isToken(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// --- UAC side: PRACK the reliable provisionals callctl receives ----------

// maxEarlyDialogs bounds the early dialogs (forks) of one outbound INVITE
// whose RSeq callctl tracks.
const maxEarlyDialogs = 16

// acceptProvisional decides what to do with a provisional response to the
// outbound INVITE req (RFC 3262 4): an unreliable one is passed on; a
// reliable one (Require: 100rel, RSeq) is PRACKed in the early dialog of its
// To tag and passed on if it is the next in RSeq order of that dialog; a
// retransmission or one out of order is dropped (false).
func (l *Leg) acceptProvisional(req *gosip.Request, res *gosip.Response) bool {
	if res.StatusCode == 100 || !hasOption(res, "Require", "100rel") {
		return true
	}
	h := res.GetHeader("RSeq")
	if h == nil {
		return true // not a well-formed reliable response: treat it as unreliable
	}
	rseq, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil || rseq == 0 {
		return true
	}
	tag, _ := res.To().Params.Get("tag")
	if tag == "" {
		return true // no early dialog to PRACK in
	}
	l.mu.Lock()
	if l.uacRSeq == nil {
		l.uacRSeq = make(map[string]uint32)
	}
	last, seen := l.uacRSeq[tag]
	switch {
	case seen && uint32(rseq) != last+1:
		// RFC 3262 4: a retransmission (or one that skipped ahead) is not
		// PRACKed and not processed further.
		l.mu.Unlock()
		return false
	case !seen && len(l.uacRSeq) >= maxEarlyDialogs:
		l.mu.Unlock()
		return false
	}
	l.uacRSeq[tag] = uint32(rseq)
	prack := l.earlyRequestLocked(gosip.PRACK, res)
	l.mu.Unlock()
	prack.AppendHeader(gosip.NewHeader("RAck", strconv.FormatUint(rseq, 10)+" "+strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)+" INVITE"))
	l.agent.goOwned(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
		defer cancel()
		res, err := l.do(ctx, prack)
		switch {
		case err != nil:
			l.logger().Debug("PRACK got no answer", zap.Error(err))
		case res.StatusCode >= 300:
			l.logger().Debug("PRACK refused", zap.Int("status", res.StatusCode))
		}
	})
	return true
}

// earlyRequestLocked builds a request in the early dialog a provisional
// response res created (RFC 3261 12.1.2: its To tag, its Contact as the
// remote target, its Record-Route reversed as the route set).
func (l *Leg) earlyRequestLocked(method gosip.RequestMethod, res *gosip.Response) *gosip.Request {
	target, routes, tag := l.remoteTarget, l.routeSet, l.remoteTag
	defer func() { l.remoteTarget, l.routeSet, l.remoteTag = target, routes, tag }()
	if c := res.Contact(); c != nil {
		l.remoteTarget = c.Address
	}
	rrs := res.GetHeaders("Record-Route")
	l.routeSet = nil
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*gosip.RecordRouteHeader); ok {
			l.routeSet = append(l.routeSet, rr.Address)
		}
	}
	l.remoteTag, _ = res.To().Params.Get("tag")
	return l.newRequestLocked(method, nil)
}

// --- UAS side: send provisionals reliably where the caller requires it ---

// maxQueuedProvisionals bounds the reliable provisionals waiting for the
// PRACK of the one before (RFC 3262 3: one unacknowledged at a time).
const maxQueuedProvisionals = 4

// uasReliable is an inbound leg's reliable provisional responses.
type uasReliable struct {
	required bool              // the INVITE said Require: 100rel
	rseq     uint32            // the last RSeq used
	pending  *reliableResponse // sent, not PRACKed yet
	queue    []*gosip.Response // waiting for pending's PRACK
	final    func()            // a 2xx waiting for pending's PRACK
	done     bool              // a final response went out: no new reliable provisionals
	acked    uint32            // the last RSeq PRACKed
	stop     chan struct{}     // closed to stop the retransmissions
	stopOnce *sync.Once
}

type reliableResponse struct {
	rseq  uint32
	res   *gosip.Response
	acked chan struct{}
}

// respondReliably sends the provisional res reliably (RFC 3262 3): with
// Require: 100rel and the next RSeq, retransmitted at T1, 2*T1, … until
// PRACKed or 64*T1 passed; one at a time, later ones queued.
func (l *Leg) respondReliably(res *gosip.Response) {
	res.AppendHeader(gosip.NewHeader("Require", "100rel"))
	l.mu.Lock()
	r := &l.rel
	if r.done || l.ended {
		l.mu.Unlock()
		return // RFC 3262 3: no new reliable provisional after the final response
	}
	if r.pending != nil {
		if len(r.queue) < maxQueuedProvisionals {
			r.queue = append(r.queue, res)
		}
		l.mu.Unlock()
		return
	}
	if r.stop == nil {
		r.stop = make(chan struct{})
		r.stopOnce = &sync.Once{}
		r.rseq = rand.Uint32N(1 << 30) // RFC 3262 3: the first RSeq is 1 .. 2**31-1
	}
	p := l.nextReliableLocked(res)
	stop := r.stop
	l.mu.Unlock()
	l.agent.goOwned(func() { l.retransmitReliable(p, stop) })
}

func (l *Leg) nextReliableLocked(res *gosip.Response) *reliableResponse {
	r := &l.rel
	r.rseq++
	res.AppendHeader(gosip.NewHeader("RSeq", strconv.FormatUint(uint64(r.rseq), 10)))
	p := &reliableResponse{rseq: r.rseq, res: res, acked: make(chan struct{})}
	r.pending = p
	return p
}

// retransmitReliable sends p until PRACKed, then the queued ones; a 2xx
// held for the PRACK goes out once it came or 64*T1 passed (the RFC would
// rather have a 5xx then, but the call has been answered by the callee; the
// leg logs it).
func (l *Leg) retransmitReliable(p *reliableResponse, stop chan struct{}) {
	stream := reliable(l.transport)
	for p != nil {
		l.agent.countSent(p.res.StatusCode)
		if err := l.serverTx.Respond(p.res); err != nil {
			l.logger().Debug("sending reliable provisional failed", zap.Error(err))
		}
		interval := t1()
		timer := time.NewTimer(interval)
		deadline := time.NewTimer(64 * t1())
		acked := false
	wait:
		for {
			select {
			case <-stop:
				timer.Stop()
				deadline.Stop()
				return
			case <-p.acked:
				acked = true
				break wait
			case <-deadline.C:
				break wait
			case <-timer.C:
				if !stream {
					if err := l.serverTx.Respond(p.res); err != nil {
						l.logger().Debug("reliable provisional retransmission failed", zap.Error(err))
					}
				}
				interval *= 2 // RFC 3262 3: doubles, with no T2 cap
				timer.Reset(interval)
			}
		}
		timer.Stop()
		deadline.Stop()
		if !acked {
			l.logger().Info("reliable provisional never PRACKed", zap.Int("status", p.res.StatusCode), zap.Uint32("rseq", p.rseq))
		}
		l.mu.Lock()
		r := &l.rel
		r.pending = nil
		final := r.final
		r.final = nil
		p = nil
		if final == nil && !r.done && len(r.queue) > 0 && !l.ended {
			next := r.queue[0]
			r.queue = r.queue[1:]
			p = l.nextReliableLocked(next)
		}
		l.mu.Unlock()
		if final != nil {
			final()
			return
		}
	}
}

// holdFinal keeps the 2xx send until the outstanding reliable provisional
// is PRACKed (RFC 3262 3: a UAS must not send a 2xx while a reliable
// provisional carrying SDP is unacknowledged; callctl waits for any, so the
// caller sees PRACK's 200 before the INVITE's). It reports whether it held
// it.
func (l *Leg) holdFinal(send func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.rel
	r.done = true
	r.queue = nil
	if r.pending == nil {
		return false
	}
	r.final = send
	return true
}

// stopReliable ends the retransmissions: a final non-2xx went out.
func (l *Leg) stopReliable() {
	l.mu.Lock()
	r := &l.rel
	r.done = true
	r.queue = nil
	r.final = nil
	if r.stop != nil {
		r.stopOnce.Do(func() { close(r.stop) })
	}
	l.mu.Unlock()
}

// onPrack answers a PRACK (RFC 3262 3): 200 when its RAck names the
// outstanding reliable provisional (or the last one acknowledged), else 481.
func (l *Leg) onPrack(req *gosip.Request, tx gosip.ServerTransaction) {
	rseq, cseq, method, ok := parseRAck(req)
	l.mu.Lock()
	r := &l.rel
	var p *reliableResponse
	match := false
	if ok && !l.outbound && l.invite != nil && cseq == l.invite.CSeq().SeqNo && method == string(gosip.INVITE) {
		if r.pending != nil && r.pending.rseq == rseq {
			p, match = r.pending, true
		} else if r.acked != 0 && r.acked == rseq {
			match = true
		}
	}
	if !match {
		l.mu.Unlock()
		l.agent.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if s := req.CSeq().SeqNo; s > l.remoteSeq {
		l.remoteSeq = s
		l.ord.advance()
	}
	r.acked = rseq
	l.mu.Unlock()
	// Answered before the held 2xx is released, so the caller sees them in
	// that order.
	l.agent.respond(tx, req, 200, "OK", nil)
	if p != nil {
		l.mu.Lock()
		select {
		case <-p.acked:
		default:
			close(p.acked)
		}
		l.mu.Unlock()
	}
}

// parseRAck reads "RAck: rseq cseq method" (RFC 3262 7.2).
func parseRAck(req *gosip.Request) (rseq, cseq uint32, method string, ok bool) {
	h := req.GetHeader("RAck")
	if h == nil {
		return 0, 0, "", false
	}
	f := strings.Fields(h.Value())
	if len(f) != 3 {
		return 0, 0, "", false
	}
	a, err1 := strconv.ParseUint(f[0], 10, 32)
	b, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, "", false
	}
	return uint32(a), uint32(b), strings.ToUpper(f[2]), true
}
