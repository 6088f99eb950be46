package session

import (
	"fmt"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/media"
	"go.uber.org/zap"
)

// The media timeouts notice a dead party: a phone that lost power or
// network sends nothing, while the PBX leg opposite goes on talking, so
// each party is watched on its own against what its SDP says it sends.
//
//   - A party that is supposed to send RTP (the call is not on hold and
//     its SDP says sendrecv) and sent none for media.timeout is dead.
//   - A party of a held call (whoever holds it, and with whatever
//     direction: a PBX that holds with sendonly need not play music) is
//     still alive while it sends RTCP, which RFC 3264 §5.1 keeps going on
//     such streams: if it has sent RTCP, nothing from it for media.timeout
//     is dead; if it never has, nothing for media.hold_timeout.
//
// Either way both legs get BYE and the session ends ERROR with a reason
// that names the silent party.

// liveness follows one party for the media timeouts.
type liveness struct {
	ep    *media.Endpoint // the endpoint followed: a new one (a transfer) restarts the clock
	sends bool            // whether the party was supposed to send RTP when since was taken
	since time.Time       // when ep and sends took their values
}

// sendsRTP reports whether a party whose SDP says info sends RTP both ways
// (RFC 3264 §5.1), on a stream not rejected.
func sendsRTP(info media.MediaInfo) bool {
	return !info.Port0 && info.Direction == media.SendRecv
}

// silence reports, when the party followed is past its timeout, what it
// did not send and for how long.
func (l *liveness) silence(ep *media.Endpoint, info media.MediaInfo, held bool, now time.Time, cfg *Config) (what string, limit time.Duration, dead bool) {
	sends := !held && sendsRTP(info)
	if ep != l.ep || sends != l.sends {
		*l = liveness{ep: ep, sends: sends, since: now}
		return "", 0, false
	}
	st := ep.Stats()
	last := l.since
	switch {
	case sends:
		what, limit = "RTP", cfg.MediaTimeout
		if st.LastIn.After(last) {
			last = st.LastIn
		}
	case st.RTCPIn > 0:
		what, limit = "RTP or RTCP while on hold", cfg.MediaTimeout
	default:
		what, limit = "RTP or RTCP while on hold", cfg.HoldTimeout
	}
	if !sends {
		if t := ep.LastActivity(); t.After(last) {
			last = t
		}
	}
	return what, limit, limit > 0 && now.Sub(last) > limit
}

// mediaCheckEvery is how often a session looks at its parties' media: often
// enough to end a call within a second of its timeout, or half the shortest
// timeout; 0 when both timeouts are off.
func mediaCheckEvery(cfg *Config) time.Duration {
	shortest := cfg.MediaTimeout
	if shortest == 0 || (cfg.HoldTimeout > 0 && cfg.HoldTimeout < shortest) {
		shortest = cfg.HoldTimeout
	}
	if shortest == 0 {
		return 0
	}
	return min(time.Second, shortest/2)
}

// checkMedia ends an answered call whose parties, one or both, went silent
// past their timeouts.
func (s *Session) checkMedia(now time.Time) {
	state := s.state()
	switch state {
	case InCall, CallerOnHold, CalleeOnHold, OnHold:
	default:
		return // not answered yet, ended, or being transferred: endpoints may change
	}
	parties := [...]struct {
		role, number string
		ep           *media.Endpoint
		info         media.MediaInfo
	}{
		{"caller", s.snap.Caller.Number, s.ea, s.fromA},
		{"callee", s.snap.Callee.Number, s.eb, s.fromB},
	}
	var dead []string
	for i, p := range parties {
		if what, limit, ok := s.live[i].silence(p.ep, p.info, state != InCall, now, &s.e.cfg); ok {
			dead = append(dead, fmt.Sprintf("no %s from the %s %s for %s", what, p.role, p.number, limit))
		}
	}
	if len(dead) == 0 {
		return
	}
	reason := "media timeout: " + strings.Join(dead, "; ")
	s.log.Info("ending the call", zap.String("reason", reason))
	s.hangupAll(reason)
	s.end(Error, reason)
}
