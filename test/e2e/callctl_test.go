package e2e

import (
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
)

func TestMain(m *testing.M) {
	// Every test stops its callctl and its peers in its cleanup, so nothing
	// of theirs may outlive the package.
	goleak.VerifyTestMain(m)
}

// callctl is one callctl running in-process for a test, with a subscription
// to its session events taken before any call.
type callctl struct {
	app                *app.App
	cfg                config.Config
	logs               *observer.ObservedLogs
	callctltest.Events // its session events, subscribed to before any call
}

// ports sizes a callctl's RTP range: 64 ports are 32 RTP/RTCP pairs, two per
// call, plenty for one call at a time with a short port rest.
const defaultRTPPorts = 64

// startCallctl starts callctl on free ports of 127.0.0.1 (SIP over UDP and
// TCP, its own RTP range) with the settings tests want (short port rest,
// media timeout and drain) and lets configure change the rest, typically
// cfg.Trunk.Address. The test's cleanup cancels it and waits for Run to
// return.
func startCallctl(t *testing.T, configure func(*config.Config)) *callctl {
	t.Helper()
	return startCallctlWithPorts(t, defaultRTPPorts, configure)
}

func startCallctlWithPorts(t *testing.T, rtpPorts int, configure func(*config.Config)) *callctl {
	t.Helper()
	cfg := callctltest.Config(t, rtpPorts, "e2e-admin-token")
	if configure != nil {
		configure(&cfg)
	}

	// Logs go to the test log (shown when it fails or with -v) and to an
	// observer, so tests can check that a log line was written.
	observed, logs := observer.New(zapcore.DebugLevel)
	log := zaptest.NewLogger(t,
		zaptest.Level(zapcore.InfoLevel),
		zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewTee(c, observed)
		})))

	a, events := callctltest.Run(t, cfg, log)
	return &callctl{app: a, cfg: cfg, logs: logs, Events: events}
}

// addr is callctl's SIP address, "127.0.0.1:port".
func (c *callctl) addr() string { return c.cfg.SIP.Listen }

// rtpPorts is callctl's RTP port range: a packet from a port in it was sent
// by callctl.
func (c *callctl) rtpPorts(t *testing.T) (lo, hi int) {
	t.Helper()
	if _, err := fmt.Sscanf(c.cfg.Media.RTPPorts, "%d-%d", &lo, &hi); err != nil {
		t.Fatalf("media.rtp_ports %q: %v", c.cfg.Media.RTPPorts, err)
	}
	return lo, hi
}

// firstSession waits for the first session event and returns its session id.
func (c *callctl) firstSession(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return c.WaitEvent(t, timeout, "session", func(session.Event) bool { return true }).SessionID
}

// waitState waits for session id to enter state (a state change, not an
// operation or DTMF event that merely reports the state).
func (c *callctl) waitState(t *testing.T, id string, state session.State, timeout time.Duration) session.Event {
	t.Helper()
	return c.WaitEvent(t, timeout, fmt.Sprintf("session %s entering %s", id, state), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State == state
	})
}

// waitStateAfter is waitState for an entry into state later than event
// after (by sequence number): a session can enter a state twice, e.g.
// IN_CALL again after a hold.
func (c *callctl) waitStateAfter(t *testing.T, id string, state session.State, after session.Event, timeout time.Duration) session.Event {
	t.Helper()
	return c.WaitEvent(t, timeout, fmt.Sprintf("session %s entering %s after event #%d", id, state, after.Seq), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State == state && e.Seq > after.Seq
	})
}

// snapshot returns session id as the registry has it now.
func (c *callctl) snapshot(t *testing.T, id string) session.Snapshot {
	t.Helper()
	s, ok := c.app.Sessions().Get(id)
	if !ok {
		t.Fatalf("session %s not in the registry (ended sessions must stay readable for calls.ended_retention)", id)
	}
	return s
}

// expectIdle checks callctl is left with no live session and, once the port
// rest is over, no RTP port pair allocated.
func (c *callctl) expectIdle(t *testing.T) {
	t.Helper()
	if !callctltest.Eventually(5*time.Second, func() bool { return c.app.Sessions().LiveCount() == 0 }) {
		t.Errorf("%d sessions still live after the calls ended: %+v", c.app.Sessions().LiveCount(), live(c.app.Sessions().List()))
	}
	if !callctltest.Eventually(c.cfg.Media.PortRest+5*time.Second, func() bool { return c.app.PortsInUse() == 0 }) {
		t.Errorf("%d RTP port pairs still allocated after the calls ended", c.app.PortsInUse())
	}
}

// expectLog checks that callctl logged a line that match accepts (its
// message and fields, as one lower-case text), waiting up to 2 s for it.
func (c *callctl) expectLog(t *testing.T, what string, match func(line string) bool) {
	t.Helper()
	var lines []string
	ok := callctltest.Eventually(2*time.Second, func() bool {
		lines = lines[:0]
		for _, e := range c.logs.All() {
			line := strings.ToLower(fmt.Sprintf("%s %s %v", e.Level, e.Message, e.ContextMap()))
			lines = append(lines, line)
			if match(line) {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Errorf("callctl logged no line %s; it logged:\n%s", what, strings.Join(lines, "\n"))
	}
}

// leg returns the media counters of the leg with role ("caller" or
// "callee").
func leg(t *testing.T, s session.Snapshot, role string) session.LegStats {
	t.Helper()
	for _, l := range s.Legs {
		if l.Role == role {
			return l
		}
	}
	t.Fatalf("session %s has no %s leg stats: %+v", s.ID, role, s.Legs)
	return session.LegStats{}
}

func live(list []session.Snapshot) []session.Snapshot {
	var out []session.Snapshot
	for _, s := range list {
		if !s.State.Ended() {
			out = append(out, s)
		}
	}
	return out
}

// goroutineDump is every goroutine's stack, for a leak report.
func goroutineDump() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// atLeast reports whether got is at least frac of of.
func atLeast(got, of uint64, frac float64) bool {
	return float64(got) >= frac*float64(of)
}
