package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/demo"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
)

func TestMain(m *testing.M) {
	// Every test stops its Sim and its callctl; nothing of theirs may
	// outlive the package.
	goleak.VerifyTestMain(m)
}

const adminToken = "demo-test-admin-token"

// callctl is one callctl running in-process, its trunk pointing at the
// simulated PBX's address.
type callctl struct {
	app  *app.App
	cfg  config.Config
	stop func() // cancels Run and waits for it
}

// startCallctl starts callctl on free loopback ports with the demo's kind of
// settings (a short ring timeout, no routes, an admin token, the audit
// trail in the test's temporary directory) and the trunk at pbx.
func startCallctl(t *testing.T, pbx string) *callctl {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	cfg.SIP.Transports = []string{"udp"}
	cfg.API.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, 64)
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Trunk.Address = pbx
	cfg.Routes = nil
	cfg.Calls.RingTimeout = 15 * time.Second
	cfg.Shutdown.DrainTimeout = 2 * time.Second
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = adminToken

	log := zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))
	a, err := app.New(cfg, log)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	c := &callctl{app: a, cfg: cfg}
	var stopped bool
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("callctl Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("callctl Run still running 20 s after cancel")
		}
	}
	t.Cleanup(c.stop)
	return c
}

// startSim starts the simulated PBX against c; the test's cleanup stops it
// (before callctl's, as cleanups run last first).
func startSim(t *testing.T, c *callctl, pbx string, opts demo.Options) *demo.Sim {
	t.Helper()
	opts.CallctlSIP = c.cfg.SIP.Listen
	opts.PBXListen = pbx
	opts.Log = zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel))
	sim, err := demo.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("demo.Start: %v", err)
	}
	t.Cleanup(sim.Stop)
	return sim
}

// sessionView is the part of the API's session JSON the tests read.
type sessionView struct {
	ID     string        `json:"id"`
	State  session.State `json:"state"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Callee struct {
		Number string `json:"number"`
	} `json:"callee"`
}

// liveSessions asks callctl's API for its sessions, as a console would, and
// returns the live ones.
func liveSessions(t *testing.T, c *callctl) []sessionView {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.app.APIURL()+"/api/v1/sessions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/sessions: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/sessions: %s", res.Status)
	}
	var body struct {
		Sessions []sessionView `json:"sessions"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("GET /api/v1/sessions: %v", err)
	}
	var live []sessionView
	for _, s := range body.Sessions {
		if !s.State.Ended() {
			live = append(live, s)
		}
	}
	return live
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

func describe(list []sessionView) string {
	var parts []string
	for _, s := range list {
		parts = append(parts, fmt.Sprintf("%s %s→%s %s", s.ID, s.Caller.Number, s.Callee.Number, s.State))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// waitInCall returns a session in IN_CALL, waiting up to timeout for one.
func waitInCall(t *testing.T, c *callctl, timeout time.Duration) sessionView {
	t.Helper()
	var found sessionView
	var last []sessionView
	if !waitFor(timeout, func() bool {
		last = liveSessions(t, c)
		for _, s := range last {
			if s.State == session.InCall {
				found = s
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no session IN_CALL within %v; live: %s", timeout, describe(last))
	}
	return found
}

// packetsIn is how many RTP packets callctl received from one party
// ("caller" or "callee") of session id.
func packetsIn(c *callctl, id, role string) uint64 {
	snap, _ := c.app.Sessions().Get(id)
	for _, l := range snap.Legs {
		if l.Role == role {
			return l.PacketsIn
		}
	}
	return 0
}

func state(t *testing.T, c *callctl, id string) session.State {
	t.Helper()
	snap, ok := c.app.Sessions().Get(id)
	if !ok {
		t.Fatalf("session %s is not in callctl's registry", id)
	}
	return snap.State
}

// TestDemoShowsLiveCallsThatCanBeHeldAndEndsCleanly is the demo's promise:
// within 10 s of starting, callctl's API shows at least two live sessions
// placed by the simulated PBX; a client's hold of one works (both phones
// answer the sendonly re-INVITE, ON_HOLD, and fall silent) and so does
// unhold; the phones hear each other through callctl, and a listener on the
// call hears two different voices; and stopping the simulation hangs up
// every call, leaving callctl without a live session.
func TestDemoShowsLiveCallsThatCanBeHeldAndEndsCleanly(t *testing.T) {
	pbx := fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	c := startCallctl(t, pbx)
	sim := startSim(t, c, pbx, demo.Options{Seed: 5})

	var live []sessionView
	if !waitFor(10*time.Second, func() bool {
		live = liveSessions(t, c)
		return len(live) >= 2
	}) {
		t.Fatalf("fewer than two live sessions within 10 s: %s (PBX: %+v)", describe(live), sim.Stats())
	}

	s := waitInCall(t, c, 20*time.Second)
	if !waitFor(3*time.Second, func() bool { return packetsIn(c, s.ID, "caller") > 0 && packetsIn(c, s.ID, "callee") > 0 }) {
		snap, _ := c.app.Sessions().Get(s.ID)
		t.Fatalf("callctl received no RTP from both phones of %s within 3 s: %+v", s.ID, snap.Legs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.app.Engine().Hold(ctx, s.ID); err != nil {
		t.Fatalf("hold of %s (%s→%s): %v", s.ID, s.Caller.Number, s.Callee.Number, err)
	}
	if got := state(t, c, s.ID); got != session.OnHold {
		t.Errorf("after hold, session %s is %s; want %s", s.ID, got, session.OnHold)
	}
	// Held with sendonly, the phones answered recvonly and fell silent
	// (a packet or two may still have been on its way).
	time.Sleep(100 * time.Millisecond)
	heldCaller, heldCallee := packetsIn(c, s.ID, "caller"), packetsIn(c, s.ID, "callee")
	time.Sleep(500 * time.Millisecond)
	if now := packetsIn(c, s.ID, "caller") + packetsIn(c, s.ID, "callee"); now > heldCaller+heldCallee {
		t.Errorf("the held phones sent %d RTP packets in 500 ms; want none", now-heldCaller-heldCallee)
	}
	if err := c.app.Engine().Unhold(ctx, s.ID); err != nil {
		t.Fatalf("unhold of %s: %v", s.ID, err)
	}
	if got := state(t, c, s.ID); got != session.InCall {
		t.Errorf("after unhold, session %s is %s; want %s", s.ID, got, session.InCall)
	}
	if !waitFor(2*time.Second, func() bool {
		return packetsIn(c, s.ID, "caller") > heldCaller && packetsIn(c, s.ID, "callee") > heldCallee
	}) {
		snap, _ := c.app.Sessions().Get(s.ID)
		t.Errorf("the phones did not resume sending after unhold: %+v", snap.Legs)
	}
	// A supervisor listening in hears both phones, each its own voice.
	expectTwoVoices(t, listenIn(t, c.app.APIURL(), adminToken, s.ID))

	if st := sim.Stats(); st.PacketsReceived == 0 || st.Answered == 0 {
		t.Errorf("the phones answered or heard nothing: %+v", st)
	}

	sim.Stop()
	if !waitFor(5*time.Second, func() bool { return c.app.Sessions().LiveCount() == 0 }) {
		t.Errorf("%d sessions still live after the simulation stopped: %s", c.app.Sessions().LiveCount(), describe(liveSessions(t, c)))
	}
	if n := c.app.Dialogs(); n != 0 && !waitFor(3*time.Second, func() bool { return c.app.Dialogs() == 0 }) {
		t.Errorf("callctl still tracks %d SIP dialogs after the simulation stopped", c.app.Dialogs())
	}
}

// TestDemoPhoneCarriesOutBlindTransfer: a client's blind transfer of a demo
// call reaches the transferee phone as REFER; it calls the target through
// callctl (a new session, answered), reports 200 in its NOTIFY, and the
// transferred session ends TRANSFER_COMPLETED.
func TestDemoPhoneCarriesOutBlindTransfer(t *testing.T) {
	pbx := fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	c := startCallctl(t, pbx)
	sim := startSim(t, c, pbx, demo.AnswerAll(demo.Options{MaxCalls: 1, Seed: 7}))

	s := waitInCall(t, c, 15*time.Second)
	// The callee transfers the caller to a 2xxx phone not in this call.
	target := "2009"
	if s.Callee.Number == target {
		target = "2008"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.app.Engine().BlindTransfer(ctx, s.ID, s.Callee.Number, target); err != nil {
		t.Fatalf("blind transfer of %s (%s→%s) by %s to %s: %v", s.ID, s.Caller.Number, s.Callee.Number, s.Callee.Number, target, err)
	}
	if !waitFor(5*time.Second, func() bool { return state(t, c, s.ID) == session.TransferCompleted }) {
		t.Errorf("session %s is %s after the transfer; want %s", s.ID, state(t, c, s.ID), session.TransferCompleted)
	}
	var next sessionView
	if !waitFor(5*time.Second, func() bool {
		for _, l := range liveSessions(t, c) {
			if l.Caller.Number == s.Caller.Number && l.Callee.Number == target && l.State == session.InCall {
				next = l
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no live session %s→%s IN_CALL after the transfer; live: %s", s.Caller.Number, target, describe(liveSessions(t, c)))
	}
	if st := sim.Stats(); st.Transfers != 1 {
		t.Errorf("PBX stats after one transfer: %+v; want Transfers 1", st)
	}
	t.Logf("transferred: %s %s→%s, then %s %s→%s", s.ID, s.Caller.Number, s.Callee.Number, next.ID, next.Caller.Number, next.Callee.Number)
}

// TestStartRefusesAddressesOffLoopback: the demo never sends a packet off
// the machine.
func TestStartRefusesAddressesOffLoopback(t *testing.T) {
	for _, opts := range []demo.Options{
		{CallctlSIP: "192.0.2.1:5070"},
		{CallctlSIP: "127.0.0.1:5070", PBXListen: "0.0.0.0:5060"},
		{CallctlSIP: "localhost:5070"},
		{CallctlSIP: "127.0.0.1:0"},
		{CallctlSIP: "127.0.0.1:5070", MaxCalls: -1},
	} {
		if sim, err := demo.Start(context.Background(), opts); err == nil {
			sim.Stop()
			t.Errorf("Start(%+v) succeeded; want an error", opts)
		} else if !strings.Contains(err.Error(), "demo:") {
			t.Errorf("Start(%+v) error %q does not say it is the demo's", opts, err)
		}
	}
}
