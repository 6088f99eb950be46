package session

import (
	"fmt"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/sip"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// The callee's leg as it sets up: its provisional responses, its answer
// (whose SDP becomes the caller's) and its failure.

// sdpFromCallee turns an SDP from the callee into the one the caller gets.
func (s *Session) sdpFromCallee(body []byte) ([]byte, error) {
	info, parsed, err := media.ParseSDPKeep(body)
	if err != nil {
		return nil, err
	}
	if err := s.srtpFromCallee(info); err != nil {
		return nil, err
	}
	s.eb.SetRemote(info.Remote, info.RTCP)
	s.setFrom(s.b, info)
	s.setRawFrom(s.b, body)
	if !s.delayed {
		body = keepEvents(body, s.fromA, info) // an answer to the caller's offer
	}
	var out []byte
	if sameBytes(body, parsed.Body()) {
		out, err = s.wa.RewriteParsed(parsed, s.ea.Advertise(), s.ea.Port())
	} else {
		out, err = s.wa.Rewrite(body, s.ea.Advertise(), s.ea.Port())
	}
	if err != nil {
		return nil, err
	}
	s.lastToA = out
	s.mapEvents() // the caller now sends with the types of out
	return out, nil
}

func (s *Session) onProgress(ev *sip.Progress) {
	if t := s.transfer; t != nil && ev.Leg == t.leg {
		s.transferProgress(fmt.Sprintf("target: %d %s", ev.Response.StatusCode, ev.Response.Reason), ev.Response.StatusCode)
		return
	}
	if ev.Leg != s.b || s.answered || s.state().Ended() {
		return
	}
	res := ev.Response
	s.noteAllow(res)
	var body []byte
	// With a delayed offer an unreliable provisional's SDP is no offer the
	// caller could answer (RFC 3261 13.2.1): it is not passed on.
	if len(res.Body()) > 0 && !s.delayed {
		// Early media (RFC 3960): relay it from now on.
		var err error
		if body, err = s.sdpFromCallee(res.Body()); err != nil {
			s.log.Warn("ignoring bad SDP in provisional response", zap.Error(err))
			body = nil
		} else {
			media.Connect(s.ea, s.eb)
		}
	}
	s.a.Respond(res.StatusCode, res.Reason, body)
	if s.state() == Setup || s.state() == Redirected {
		s.transition(Ringing, fmt.Sprintf("callee: %d %s", res.StatusCode, res.Reason))
	}
}

func (s *Session) onAnswered(ev *sip.Answered) {
	if t := s.transfer; t != nil && ev.Leg == t.leg {
		s.onFallbackAnswered(ev)
		return
	}
	if ev.Leg != s.b || s.state().Ended() {
		ev.Leg.Bye("")
		return
	}
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	s.noteAllow(ev.Response)
	body, err := s.sdpFromCallee(ev.Response.Body())
	if err != nil {
		s.log.Warn("callee answered with bad SDP", zap.Error(err))
		s.b.Bye(`SIP;cause=488;text="bad SDP"`)
		s.a.Respond(502, "Bad Gateway", nil, warning("callee's SDP: "+err.Error()))
		s.end(Error, "callee answered with bad SDP: "+err.Error())
		return
	}
	s.answered = true
	// Relay first: the callee may already be talking, and the caller starts
	// as soon as it sees the 200.
	s.mapEvents()
	media.Connect(s.ea, s.eb)
	s.a.Respond(200, "OK", body)
	// A delayed offer: body was the callee's offer; the caller's ACK
	// brings the answer, which onAcked passes on in the callee's ACK.
	s.transition(InCall, "callee answered")
}

// failureState maps the callee's final response to the session's end
// (docs/design.md: 486 stays 486, 404 stays 404, no answer is 408/480).
func failureState(status int) State {
	switch status {
	case 486, 600:
		return Busy
	case 404, 604, 484, 410:
		return NotFound
	case 408, 480, 487:
		return NotAnswered
	}
	return Error
}

func (s *Session) onFailed(ev *sip.Failed) {
	if t := s.transfer; t != nil && ev.Leg == t.leg {
		s.onFallbackFailed(ev)
		return
	}
	if ev.Leg != s.b || s.state().Ended() {
		return
	}
	if s.ringTimer != nil {
		s.ringTimer.Stop()
	}
	status, reason := ev.Status, ""
	if ev.Response != nil {
		reason = ev.Response.Reason
	}
	var hdrs []gosip.Header
	switch {
	case status == 487:
		// Nobody here cancelled it; to the caller it was not answered.
		status, reason = 480, "Temporarily Unavailable"
	case ev.Response == nil && status == 408:
		reason = "Request Timeout"
	case ev.Response == nil:
		status, reason = 503, "Service Unavailable"
		hdrs = append(hdrs, s.e.retryAfter())
	}
	if ev.Response != nil {
		if ra := ev.Response.GetHeader("Retry-After"); ra != nil && len(hdrs) == 0 {
			hdrs = append(hdrs, gosip.HeaderClone(ra))
		}
	}
	why := fmt.Sprintf("callee: %d %s", ev.Status, reason)
	if ev.Err != nil {
		why += ": " + ev.Err.Error()
	}
	s.a.Respond(status, reason, nil, hdrs...)
	s.end(failureState(ev.Status), why)
}
