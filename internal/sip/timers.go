package sip

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Session timers (RFC 4028), negotiated on each leg independently. On a
// leg where callctl is the refresher it refreshes at half the interval
// (RFC 4028 10) with an UPDATE without SDP when the peer allows UPDATE,
// else with a re-INVITE carrying the SDP it last sent on the leg (same
// o= version: no change, RFC 3264 8). A refresh stays on its leg: the owner
// never sees it. Where the peer is the refresher and does not refresh, the
// leg reports SessionExpired shortly before the interval ends.

// SessionExpired means the leg's session timer ran out (RFC 4028 10): the
// refresher did not refresh in time, or callctl's own refresh failed with
// Status (408 or 481; 0 when the peer should have refreshed). The owner
// should end the call with BYE.
type SessionExpired struct {
	Leg    *Leg
	Status int
}

func (e *SessionExpired) leg() *Leg { return e.Leg }

// sessionTimer is a leg's RFC 4028 state, guarded by the leg's mu.
type sessionTimer struct {
	interval   uint32 // session interval in seconds; 0: no timer on this leg
	refresher  bool   // callctl refreshes (else the peer does)
	peerUpdate bool   // the peer allows UPDATE: refreshes go as UPDATE
	lastSDP    []byte // the SDP callctl last sent on this leg
	expires    time.Time
	timer      *time.Timer
	gen        uint64 // bumped whenever the timer is re-armed or stopped
	retries422 int    // outbound INVITE: 422 answers followed
}

// maxRetries422 bounds how often an INVITE is re-sent after 422 (RFC 4028
// 7.4 allows it; a peer raising Min-SE forever must not loop us).
const maxRetries422 = 2

func (a *Agent) timerUnit() time.Duration {
	if a.cfg.TimerUnit > 0 {
		return a.cfg.TimerUnit
	}
	return time.Second
}

// ourInterval is the Session-Expires callctl asks for, 0 for none.
func (a *Agent) ourInterval() uint32 { return uint32(a.cfg.SessionTimer / time.Second) }

// minSE is the smallest interval callctl accepts (RFC 4028 4: at least 90).
func (a *Agent) minSE() uint32 {
	if v := uint32(a.cfg.MinSE / time.Second); v >= 90 {
		return v
	}
	return 90
}

// parseSessionExpires reads Session-Expires (or its compact form x):
// delta-seconds and the refresher parameter ("uac", "uas" or "").
func parseSessionExpires(m headered) (secs uint32, refresher string, ok bool) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0, "", false
	}
	parts := strings.Split(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 32)
	if err != nil || n == 0 {
		return 0, "", false
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case "uac", "uas":
				refresher = v
			}
		}
	}
	return uint32(n), refresher, true
}

// parseMinSE reads Min-SE's delta-seconds (0 when absent or bad).
func parseMinSE(m headered) uint32 {
	h := m.GetHeader("Min-SE")
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

func allowsMethod(m headered, method gosip.RequestMethod) bool {
	for _, h := range m.GetHeaders("Allow") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), string(method)) {
				return true
			}
		}
	}
	return false
}

// refuseSmallInterval answers 422 with callctl's Min-SE to an INVITE or
// UPDATE whose Session-Expires is below it (RFC 4028 8.1). It reports
// whether it answered.
func (a *Agent) refuseSmallInterval(req *gosip.Request, tx gosip.ServerTransaction) bool {
	if req.Method != gosip.INVITE && req.Method != gosip.UPDATE {
		return false
	}
	se, _, ok := parseSessionExpires(req)
	if !ok || se >= a.minSE() {
		return false
	}
	a.respond(tx, req, 422, "Session Interval Too Small", nil,
		gosip.NewHeader("Min-SE", strconv.FormatUint(uint64(a.minSE()), 10)))
	return true
}

// sessionExpiresHeader is Session-Expires for a request or response.
func sessionExpiresHeader(secs uint32, refresher string) gosip.Header {
	return gosip.NewHeader("Session-Expires", strconv.FormatUint(uint64(secs), 10)+";refresher="+refresher)
}

// inviteTimerHeaders are what callctl's dialog-creating INVITE offers
// (RFC 4028 7.1): its interval and Min-SE, when timers are configured.
func (a *Agent) inviteTimerHeaders(secs uint32) []gosip.Header {
	if secs == 0 {
		return nil
	}
	return []gosip.Header{
		gosip.NewHeader("Session-Expires", strconv.FormatUint(uint64(secs), 10)),
		gosip.NewHeader("Min-SE", strconv.FormatUint(uint64(a.minSE()), 10)),
	}
}

// retryAfter422 rewrites the outbound INVITE req after a 422 (RFC 4028
// 7.4): a new CSeq and branch, Session-Expires raised to the response's
// Min-SE. It returns nil when the INVITE should fail instead.
func (l *Leg) retryAfter422(req *gosip.Request, res *gosip.Response) *gosip.Request {
	min := parseMinSE(res)
	l.mu.Lock()
	defer l.mu.Unlock()
	if min == 0 || min > 86400 || l.st.retries422 >= maxRetries422 {
		return nil
	}
	l.st.retries422++
	l.localSeq++
	next := req.Clone()
	next.RemoveHeader("Via")
	next.PrependHeader(l.agent.via(next.Transport()))
	next.CSeq().SeqNo = l.localSeq
	next.RemoveHeader("Session-Expires")
	next.RemoveHeader("Min-SE")
	secs := max(min, l.agent.ourInterval())
	for _, h := range l.agent.inviteTimerHeaders(secs) {
		next.AppendHeader(h)
	}
	next.ReplaceHeader(gosip.NewHeader("Min-SE", strconv.FormatUint(uint64(max(min, l.agent.minSE())), 10)))
	return next
}

// uasTimerLocked negotiates the timer for a 2xx callctl sends to the
// peer's INVITE or UPDATE req (RFC 4028 9) and arms it; it returns the
// headers the 2xx carries. The peer's Session-Expires and refresher are
// honoured; without them callctl refreshes itself with its own interval
// (refresher=uas), and Require: timer is sent only to a peer supporting it.
func (l *Leg) uasTimerLocked(req *gosip.Request) []gosip.Header {
	se, ref, ok := parseSessionExpires(req)
	peerTimer := hasOption(req, "Supported", "timer") || hasOption(req, "Require", "timer")
	var interval uint32
	switch {
	case ok:
		interval = max(se, l.agent.minSE())
	case l.st.interval != 0:
		interval = l.st.interval
	default:
		interval = l.agent.ourInterval()
	}
	if interval == 0 {
		return nil
	}
	if req.Method == gosip.INVITE && req == l.invite {
		l.st.peerUpdate = allowsMethod(req, gosip.UPDATE)
	}
	l.st.interval = interval
	l.st.refresher = ref != "uac" || !peerTimer
	refresher := "uas"
	if !l.st.refresher {
		refresher = "uac"
	}
	hdrs := []gosip.Header{sessionExpiresHeader(interval, refresher)}
	if peerTimer {
		hdrs = append(hdrs, gosip.NewHeader("Require", "timer"))
	}
	l.armTimerLocked()
	return hdrs
}

// uacTimerLocked takes the timer from a 2xx to an INVITE or UPDATE callctl
// sent on the leg (RFC 4028 7.4) and arms it. Without Session-Expires the
// peer does not do timers, and callctl refreshes itself with its own
// interval (or the one running).
func (l *Leg) uacTimerLocked(res *gosip.Response, initial bool) {
	se, ref, ok := parseSessionExpires(res)
	switch {
	case ok:
		l.st.interval = max(se, 1)
		l.st.refresher = ref != "uas"
	case l.st.interval != 0:
		l.st.refresher = true
	default:
		l.st.interval = l.agent.ourInterval()
		l.st.refresher = true
	}
	if initial {
		l.st.peerUpdate = allowsMethod(res, gosip.UPDATE)
	}
	l.armTimerLocked()
}

// requestTimerHeadersLocked are the timer headers of a re-INVITE or UPDATE
// callctl sends in a dialog with a running timer (RFC 4028 7.4: a
// re-INVITE without them would turn the peer's timer off).
func (l *Leg) requestTimerHeadersLocked() []gosip.Header {
	if l.st.interval == 0 {
		return nil
	}
	refresher := "uac"
	if !l.st.refresher {
		refresher = "uas"
	}
	return []gosip.Header{
		sessionExpiresHeader(l.st.interval, refresher),
		gosip.NewHeader("Min-SE", strconv.FormatUint(uint64(l.agent.minSE()), 10)),
		gosip.NewHeader("Supported", supportedHeader),
	}
}

// rememberSDPLocked keeps the SDP callctl sent on the leg, for its
// re-INVITE refreshes.
func (l *Leg) rememberSDPLocked(body []byte) {
	if len(body) > 0 {
		l.st.lastSDP = body
	}
}

// guard is how long before the expiry the side not refreshing gives up:
// the minimum of 32 s and a third of the interval (RFC 4028 10).
func (l *Leg) expiryGuard(full time.Duration) time.Duration {
	return min(32*l.agent.timerUnit(), full/3)
}

// armTimerLocked starts the leg's timer afresh for its interval: the
// refresh at half of it, or the expiry check at its end less the guard.
func (l *Leg) armTimerLocked() {
	if l.st.interval == 0 || l.ended {
		l.stopTimerLocked()
		return
	}
	full := time.Duration(l.st.interval) * l.agent.timerUnit()
	l.st.expires = time.Now().Add(full)
	d := full - l.expiryGuard(full)
	if l.st.refresher {
		d = full / 2
	}
	l.scheduleLocked(d)
}

func (l *Leg) scheduleLocked(d time.Duration) {
	if l.st.timer != nil {
		l.st.timer.Stop()
	}
	l.st.gen++
	gen := l.st.gen
	l.st.timer = time.AfterFunc(d, func() {
		l.agent.goOwned(func() { l.onTimer(gen) })
	})
}

// stopTimerLocked stops the leg's timer for good (the leg ends).
func (l *Leg) stopTimerLocked() {
	l.st.gen++
	if l.st.timer != nil {
		l.st.timer.Stop()
		l.st.timer = nil
	}
}

func (l *Leg) onTimer(gen uint64) {
	l.mu.Lock()
	if l.ended || gen != l.st.gen || l.st.interval == 0 {
		l.mu.Unlock()
		return
	}
	if !l.st.refresher || !l.answered {
		l.expireLocked(0)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.refresh(gen)
}

func (l *Leg) expireLocked(status int) {
	l.stopTimerLocked()
	l.st.interval = 0
	l.logger().Info("session timer expired", zap.Int("status", status))
	l.emitLocked(&SessionExpired{Leg: l, Status: status})
}

// retryRefreshLocked tries the refresh again after d, or reports the
// session expired when that would be too late.
func (l *Leg) retryRefreshLocked(d time.Duration) {
	full := time.Duration(l.st.interval) * l.agent.timerUnit()
	if time.Until(l.st.expires)-l.expiryGuard(full) <= d {
		l.expireLocked(0)
		return
	}
	l.scheduleLocked(d)
}

// refresh sends callctl's session refresh on the leg and handles its
// outcome; it runs on an agent goroutine.
func (l *Leg) refresh(gen uint64) {
	unit := l.agent.timerUnit()
	l.mu.Lock()
	if l.ended || gen != l.st.gen {
		l.mu.Unlock()
		return
	}
	method, body := gosip.UPDATE, []byte(nil)
	if !l.st.peerUpdate && len(l.st.lastSDP) > 0 {
		method, body = gosip.INVITE, l.st.lastSDP
		if l.clientInvite || l.serverInvite || l.awaitAck != nil {
			// An INVITE transaction is in progress; its 2xx refreshes
			// the session too. Look again shortly.
			l.retryRefreshLocked(unit)
			l.mu.Unlock()
			return
		}
		l.clientInvite = true
	}
	req := l.newRequestLocked(method, body)
	for _, h := range l.requestTimerHeadersLocked() {
		req.AppendHeader(h)
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 64*t1())
	defer cancel()
	res, err := l.do(ctx, req)
	if method == gosip.INVITE && err == nil && res.IsSuccess() {
		l.sendAck(req, res)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if method == gosip.INVITE {
		l.clientInvite = false
	}
	if l.ended || gen != l.st.gen {
		return // the leg ended, or another 2xx re-armed the timer meanwhile
	}
	switch {
	case err != nil:
		l.expireLocked(408)
	case res.StatusCode == 408 || res.StatusCode == 481:
		// RFC 4028 10: the session is over.
		l.expireLocked(res.StatusCode)
	case res.IsSuccess():
		l.uacTimerLocked(res, false)
	case res.StatusCode == 422:
		if m := parseMinSE(res); m > l.st.interval && m <= 86400 {
			l.st.interval = m
		}
		l.retryRefreshLocked(0)
	case method == gosip.UPDATE && (res.StatusCode == 405 || res.StatusCode == 501) && len(l.st.lastSDP) > 0:
		l.st.peerUpdate = false
		l.retryRefreshLocked(0)
	case res.StatusCode == 491:
		// RFC 3261 14.1: try again after a random while.
		l.retryRefreshLocked(time.Duration(rand.Int64N(int64(2 * unit))))
	default:
		l.logger().Info("session refresh refused", zap.Int("status", res.StatusCode))
		l.retryRefreshLocked(time.Until(l.st.expires) / 2)
	}
}
