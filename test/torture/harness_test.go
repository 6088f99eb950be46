package torture

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
)

func TestMain(m *testing.M) {
	// Every test stops its callctl, trunk and peers in its cleanup.
	goleak.VerifyTestMain(m)
}

// callctl is one callctl running in-process, with a subscription to its
// session events taken before any call.
type callctl struct {
	app                *app.App
	cfg                config.Config
	callctltest.Events // its session events
}

// startCallctl starts callctl on a free port of 127.0.0.1 (SIP over UDP and
// TCP), allowing 127.0.0.0/8, with trunk as its PBX, and lets configure
// change the rest (routes). It is the harness of test/e2e cut down to what
// these tests read; the test's cleanup stops it and waits for Run to return.
func startCallctl(t *testing.T, trunk string, configure func(*config.Config)) *callctl {
	t.Helper()
	cfg := callctltest.Config(t, 64, "torture-admin-token")
	cfg.Calls.RingTimeout = 10 * time.Second
	cfg.Trunk.Address = trunk
	if configure != nil {
		configure(&cfg)
	}
	// Hostile traffic makes a lot of noise at debug level: keep the test log
	// to warnings (shown when a test fails or with -v).
	a, events := callctltest.Run(t, cfg, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
	return &callctl{app: a, cfg: cfg, Events: events}
}

// addr is callctl's SIP address, "127.0.0.1:port".
func (c *callctl) addr() string { return c.cfg.SIP.Listen }

// sessionFor waits for the first event of the session whose dialled number
// is number and returns the session's id.
func (c *callctl) sessionFor(t *testing.T, number string, timeout time.Duration) string {
	t.Helper()
	return c.WaitEvent(t, timeout, "a session dialling "+number, func(e session.Event) bool {
		return e.Session.Dialled == number
	}).SessionID
}

// waitState waits for session id to enter state.
func (c *callctl) waitState(t *testing.T, id string, state session.State, timeout time.Duration) {
	t.Helper()
	c.WaitEvent(t, timeout, fmt.Sprintf("session %s entering %s", id, state), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State == state
	})
}

// expectIdle checks callctl is left with no live session, no dialog and,
// once the port rest is over, no RTP port pair allocated.
func (c *callctl) expectIdle(t *testing.T) {
	t.Helper()
	if !callctltest.Eventually(5*time.Second, func() bool { return c.app.Sessions().LiveCount() == 0 }) {
		t.Errorf("%d sessions still live after the calls ended: %s", c.app.Sessions().LiveCount(), c.Describe())
	}
	if !callctltest.Eventually(5*time.Second, func() bool { return c.app.Dialogs() == 0 }) {
		t.Errorf("%d SIP dialogs still registered after the calls ended", c.app.Dialogs())
	}
	if !callctltest.Eventually(c.cfg.Media.PortRest+5*time.Second, func() bool { return c.app.PortsInUse() == 0 }) {
		t.Errorf("%d RTP port pairs still allocated after the calls ended", c.app.PortsInUse())
	}
}
