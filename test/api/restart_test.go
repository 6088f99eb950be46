package api

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// legView is a session as GET /api/v1/sessions lists it, with its legs'
// media counters.
type legView = callctltest.SessionView

func (s *server) legViews(t *testing.T) []legView {
	t.Helper()
	return callctltest.API{URL: s.url, Token: adminToken, Client: s.client}.Sessions(t)
}

// restartable is a callctl daemon that can be killed and started again on
// the same SIP and API addresses and data directory (the parties' in-dialog
// requests go to its Contact).
type restartable struct {
	name string // its cluster.node
	bin  string
	s    *server
	args []string
	env  []string
}

func newRestartable(t *testing.T, trunk string, node string) *restartable {
	t.Helper()
	n := callctltest.NewNode(t, "", trunk, adminToken)
	s := &server{url: n.API.URL, client: n.API.Client}
	s.cfg.SIP.Listen = n.SIP
	return &restartable{name: node, bin: n.Bin, s: s, args: n.Args, env: append(n.Env, "CALLCTL_CLUSTER_NODE="+node)}
}

func (r *restartable) start(t *testing.T) *callctltest.Daemon {
	t.Helper()
	return callctltest.StartDaemon(t, r.bin, r.s.url, r.args, r.env)
}

// Issue 12 acceptance (a): callctl killed with kill -9 under 20 live calls
// with RTP, and started again, re-adopts every call: each party gets a
// re-INVITE onto the new process's relay, audio flows both ways again,
// the sessions keep their ids (clients see RECOVERED), and when the
// callers hang up every callee gets its BYE.
func TestKilledCallctlReadoptsItsCallsWhenStartedAgain(t *testing.T) {
	const calls = 20
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_readopted.xml"), Calls: calls, Dir: dir, Timeout: 2 * time.Minute})
	r := newRestartable(t, uas.LocalAddr(), "node-a")
	first := r.start(t)
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uac_readopted.xml"), RemoteAddr: r.s.cfg.SIP.Listen,
		Calls: calls, Rate: 20, Limit: calls, Service: "2001", Dir: dir,
		Keys: map[string]string{"after": "3000"}, Timeout: 2 * time.Minute,
	})

	var before []legView
	if !callctltest.Eventually(20*time.Second, func() bool {
		before = r.s.legViews(t)
		return len(before) == calls && !slices.ContainsFunc(before, func(v legView) bool { return v.State != "IN_CALL" || !v.Talking() })
	}) {
		t.Fatalf("before the kill: want %d sessions IN_CALL with audio both ways on both legs; have %+v", calls, before)
	}
	ids := make([]string, len(before))
	for i, v := range before {
		ids[i] = v.ID
	}
	slices.Sort(ids)
	// Records are written off the call's path: give the last a moment.
	time.Sleep(500 * time.Millisecond)
	first.Kill(t)

	second := r.start(t)
	st := r.s.openStream(t, adminToken, "?since=0")
	st.waitFor(t, 15*time.Second, fmt.Sprintf("%d RECOVERED events", calls), func(msgs []streamMsg) bool {
		n := 0
		for _, m := range msgs {
			if m.Type == "RECOVERED" && slices.Contains(ids, m.SessionID) {
				n++
			}
		}
		return n == calls
	})
	var after []legView
	if !callctltest.Eventually(10*time.Second, func() bool {
		after = r.s.legViews(t)
		return len(after) == calls && !slices.ContainsFunc(after, func(v legView) bool { return v.State != "IN_CALL" || !v.Talking() })
	}) {
		t.Fatalf("after the restart: want the %d sessions IN_CALL with audio both ways on both legs through the new process; have %+v", calls, after)
	}
	got := make([]string, len(after))
	for i, v := range after {
		got[i] = v.ID
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("session ids after the restart %v; want the same as before %v", got, ids)
	}
	// The callers hang up: callctl relays each BYE, every callee gets one.
	uac.ExpectPass(t, 30*time.Second)
	uas.ExpectPass(t, 30*time.Second)
	var ended []legView
	if !callctltest.Eventually(10*time.Second, func() bool {
		ended = r.s.legViews(t)
		return !slices.ContainsFunc(ended, func(v legView) bool { return v.State != "CALLER_HUNG_UP" })
	}) {
		t.Errorf("after the callers hung up: want every session CALLER_HUNG_UP; have %+v", ended)
	}
	// Ended calls leave no record behind: killed and started once more,
	// callctl has nothing to re-adopt.
	second.Kill(t)
	r.start(t)
	if left := r.s.legViews(t); len(left) != 0 {
		t.Errorf("after a second kill -9 and restart with no live call: sessions %+v; want none", left)
	}
}

// A call that cannot be re-adopted is ended cleanly: its caller forgot the
// call while callctl was down and answers the re-INVITE 481, so callctl
// sends the callee a BYE (once the callee answered its own re-INVITE) and
// none to the caller, and writes a call record that says why.
func TestACallThatCannotBeReadoptedEndsWithAByeAndARecord(t *testing.T) {
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_readopted.xml"), Dir: dir, Timeout: time.Minute})
	r := newRestartable(t, uas.LocalAddr(), "node-a")
	first := r.start(t)
	uac := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uac_readopt_481.xml"), RemoteAddr: r.s.cfg.SIP.Listen,
		Service: "2001", Dir: dir, Timeout: time.Minute})
	var before []legView
	if !callctltest.Eventually(10*time.Second, func() bool {
		before = r.s.legViews(t)
		return len(before) == 1 && before[0].State == "IN_CALL" && before[0].Talking()
	}) {
		t.Fatalf("before the kill: want one session IN_CALL with audio; have %+v", before)
	}
	id := before[0].ID
	time.Sleep(500 * time.Millisecond) // the record is written off the call's path
	first.Kill(t)
	r.start(t)

	uac.ExpectPass(t, 20*time.Second) // 481 answered, and no BYE came
	uas.ExpectPass(t, 20*time.Second) // its re-INVITE, then the BYE
	const why = "not re-adopted: the caller answered the re-INVITE 481"
	var rec callRecord
	if !callctltest.Eventually(10*time.Second, func() bool {
		res := r.s.do(t, adminToken, "GET", "/api/v1/calls?session="+id, "")
		var calls struct{ Calls []callRecord }
		res.decode(t, &calls)
		if len(calls.Calls) == 1 {
			rec = calls.Calls[0]
		}
		return rec.State != ""
	}) {
		t.Fatalf("no call record of session %s after it could not be re-adopted", id)
	}
	if rec.State != "ERROR" || rec.EndReason != why {
		t.Errorf("call record %+v; want state ERROR, end reason %q", rec, why)
	}
}
