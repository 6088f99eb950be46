package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"slices"
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
	"github.com/callctl/callctl/test/peers"
)

func TestMain(m *testing.M) {
	// Every test stops its callctl and its peers in its cleanup, so nothing
	// of theirs may outlive the package.
	goleak.VerifyTestMain(m)
}

// callctl is one callctl running in-process for a test, with a subscription
// to its session events taken before any call.
type callctl struct {
	app  *app.App
	cfg  config.Config
	sub  *session.Subscription
	logs *observer.ObservedLogs

	events []session.Event // read from sub so far, in order
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
	cfg := config.Default()
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	cfg.SIP.Transports = []string{"udp", "tcp"}
	cfg.SIP.Allow = []string{"127.0.0.0/8"}
	cfg.API.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, rtpPorts)
	cfg.Media.IP = "127.0.0.1"
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Media.Timeout = 15 * time.Second
	cfg.Calls.RingTimeout = 15 * time.Second
	cfg.Shutdown.DrainTimeout = 2 * time.Second
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = "e2e-admin-token"
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

	a, err := app.New(cfg, log)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	c := &callctl{app: a, cfg: cfg, logs: logs, sub: a.Sessions().Subscribe(4096)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("callctl Run: %v", err)
			}
		case <-time.After(cfg.Shutdown.DrainTimeout + 15*time.Second):
			t.Errorf("callctl Run still running %v after cancel", cfg.Shutdown.DrainTimeout+15*time.Second)
		}
		c.sub.Close()
	})
	return c
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

// waitEvent returns the first event, already read or arriving within
// timeout, that match accepts; it fails the test if none does.
func (c *callctl) waitEvent(t *testing.T, timeout time.Duration, what string, match func(session.Event) bool) session.Event {
	t.Helper()
	for _, e := range c.events {
		if match(e) {
			return e
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.sub.C():
			if !ok {
				t.Fatalf("session events ended (subscriber dropped: %v) while waiting for %s; events: %s", c.sub.Dropped(), what, c.describe())
			}
			c.events = append(c.events, e)
			if match(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %s within %v; events: %s", what, timeout, c.describe())
		}
	}
}

// drain reads the events already waiting, without blocking.
func (c *callctl) drain() {
	for {
		select {
		case e, ok := <-c.sub.C():
			if !ok {
				return
			}
			c.events = append(c.events, e)
		default:
			return
		}
	}
}

// firstSession waits for the first session event and returns its session id.
func (c *callctl) firstSession(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return c.waitEvent(t, timeout, "session", func(session.Event) bool { return true }).SessionID
}

// waitState waits for session id to enter state (a state change, not an
// operation or DTMF event that merely reports the state).
func (c *callctl) waitState(t *testing.T, id string, state session.State, timeout time.Duration) session.Event {
	t.Helper()
	return c.waitEvent(t, timeout, fmt.Sprintf("session %s entering %s", id, state), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State == state
	})
}

// waitStateAfter is waitState for an entry into state later than event
// after (by sequence number): a session can enter a state twice, e.g.
// IN_CALL again after a hold.
func (c *callctl) waitStateAfter(t *testing.T, id string, state session.State, after session.Event, timeout time.Duration) session.Event {
	t.Helper()
	return c.waitEvent(t, timeout, fmt.Sprintf("session %s entering %s after event #%d", id, state, after.Seq), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State == state && e.Seq > after.Seq
	})
}

// waitEnded waits for session id to reach an ended state and returns that
// event (its Session is the final snapshot).
func (c *callctl) waitEnded(t *testing.T, id string, timeout time.Duration) session.Event {
	t.Helper()
	return c.waitEvent(t, timeout, fmt.Sprintf("session %s ending", id), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State.Ended()
	})
}

// walk is the states session id went through, from the events read so far:
// the state before the first event, then each new state.
func (c *callctl) walk(id string) []session.State {
	var states []session.State
	for _, e := range c.events {
		if e.SessionID != id || e.Type != session.EventStateChanged {
			continue
		}
		if len(states) == 0 && e.Previous != "" {
			states = append(states, e.Previous)
		}
		states = append(states, e.State)
	}
	return states
}

// expectWalk checks session id went exactly through want.
func (c *callctl) expectWalk(t *testing.T, id string, want ...session.State) {
	t.Helper()
	if got := c.walk(id); !slices.Equal(got, want) {
		t.Errorf("session %s went %v; want %v", id, got, want)
	}
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
	if !eventually(5*time.Second, func() bool { return c.app.Sessions().LiveCount() == 0 }) {
		t.Errorf("%d sessions still live after the calls ended: %+v", c.app.Sessions().LiveCount(), live(c.app.Sessions().List()))
	}
	if !eventually(c.cfg.Media.PortRest+5*time.Second, func() bool { return c.app.PortsInUse() == 0 }) {
		t.Errorf("%d RTP port pairs still allocated after the calls ended", c.app.PortsInUse())
	}
}

// expectLog checks that callctl logged a line that match accepts (its
// message and fields, as one lower-case text), waiting up to 2 s for it.
func (c *callctl) expectLog(t *testing.T, what string, match func(line string) bool) {
	t.Helper()
	var lines []string
	ok := eventually(2*time.Second, func() bool {
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

// legStats is leg without failing: zero counters when the leg is missing.
func legStats(s session.Snapshot, role string) session.LegStats {
	for _, l := range s.Legs {
		if l.Role == role {
			return l
		}
	}
	return session.LegStats{Role: role}
}

func (c *callctl) describe() string {
	var b strings.Builder
	for _, e := range c.events {
		switch {
		case e.Type == session.EventOperation && e.Operation != nil:
			fmt.Fprintf(&b, "\n  #%d %s operation %s %v: %s %s (in %s)", e.Seq, e.SessionID, e.Operation.Name, e.Operation.Args, e.Operation.Result, e.Operation.Error, e.State)
		case e.Type == session.EventDTMFReceived && e.DTMF != nil:
			fmt.Fprintf(&b, "\n  #%d %s DTMF %+v (in %s)", e.Seq, e.SessionID, *e.DTMF, e.State)
		default:
			fmt.Fprintf(&b, "\n  #%d %s %s→%s (%s)", e.Seq, e.SessionID, e.Previous, e.State, e.Reason)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
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

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
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
