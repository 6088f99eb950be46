package api

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

// startCluster starts n callctl nodes whose embedded NATS servers form
// one NATS cluster (callctltest.ClusterEnv), all with trunk as their
// trunk, and waits until every one is ready.
func startCluster(t *testing.T, n int, trunk, configFile string) ([]*restartable, []*callctltest.Daemon) {
	t.Helper()
	return startClusterWith(t, n, trunk, configFile, nil)
}

// startClusterWith is startCluster with extra(i), when not nil, added to
// node i's environment.
func startClusterWith(t *testing.T, n int, trunk, configFile string, extra func(i int) []string) ([]*restartable, []*callctltest.Daemon) {
	t.Helper()
	env := callctltest.ClusterEnv(t, n)
	nodes := make([]*restartable, n)
	daemons := make([]*callctltest.Daemon, n)
	for i := range nodes {
		nodes[i] = newRestartable(t, trunk, fmt.Sprintf("node-%d", i+1))
		nodes[i].args = append(nodes[i].args, "--config", configFile)
		nodes[i].env = append(nodes[i].env, env[i]...)
		nodes[i].env = append(nodes[i].env, "CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=20s")
		if extra != nil {
			nodes[i].env = append(nodes[i].env, extra(i)...)
		}
		daemons[i] = callctltest.LaunchDaemon(t, nodes[i].bin, nodes[i].args, nodes[i].env)
	}
	for i, d := range daemons {
		d.WaitReady(t, nodes[i].s.url, 40*time.Second)
	}
	return nodes, daemons
}

// carried waits until the nodes, between them, carry exactly ids, each
// IN_CALL with audio both ways on both legs, and returns how many each
// carries.
func carried(t *testing.T, what string, nodes []*restartable, ids []string, timeout time.Duration) []int {
	t.Helper()
	var per []int
	var seen []legView
	ok := callctltest.Eventually(timeout, func() bool {
		per, seen = make([]int, len(nodes)), nil
		var got []string
		for i, n := range nodes {
			for _, v := range n.s.legViews(t) {
				if v.Node == "" && v.State == "IN_CALL" && v.Talking() {
					got = append(got, v.ID)
					per[i]++
				}
				seen = append(seen, v)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, ids)
	})
	if !ok {
		t.Fatalf("%s: want sessions %v IN_CALL with audio both ways, between the nodes; have %+v", what, ids, seen)
	}
	return per
}

// phonePairs starts n baresip callees (3001, 3002, …) and n callers, and
// writes a configuration whose routes send 30NN to its callee. baresip is
// the peer here because a moved call needs parties that honour RFC 3261's
// target refresh and answer where the Via says (SIPp answers a call's
// requests to the address it first talked to).
func phonePairs(t *testing.T, n int) (callers, callees []*peers.Baresip, configFile string) {
	t.Helper()
	var yaml strings.Builder
	yaml.WriteString("routes:\n")
	for i := range n {
		callee := peers.StartBaresip(t, peers.BaresipOptions{User: fmt.Sprintf("30%02d", i+1)})
		callees = append(callees, callee)
		fmt.Fprintf(&yaml, "  - match: \"30%02d\"\n    target: \"sip:{number}@%s\"\n", i+1, callee.SIPAddr())
		callers = append(callers, peers.StartBaresip(t, peers.BaresipOptions{User: fmt.Sprintf("10%02d", i+1)}))
	}
	configFile = filepath.Join(t.TempDir(), "callctl.yaml")
	if err := os.WriteFile(configFile, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return callers, callees, configFile
}

// callsThrough has each caller call its callee through node, and returns
// the sessions' ids once every call talks.
func callsThrough(t *testing.T, node *restartable, callers, callees []*peers.Baresip) []string {
	t.Helper()
	for i, p := range callers {
		if err := p.Dial(fmt.Sprintf("sip:30%02d@%s", i+1, node.s.cfg.SIP.Listen)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range append(slices.Clone(callers), callees...) {
		if _, err := p.WaitEvent(peers.EventCallEstablished, 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var vs []legView
	if !callctltest.Eventually(20*time.Second, func() bool {
		vs = node.s.legViews(t)
		return len(vs) == len(callers) && !slices.ContainsFunc(vs, func(v legView) bool { return v.State != "IN_CALL" || !v.Talking() })
	}) {
		t.Fatalf("want %d sessions IN_CALL with audio on %s; have %+v", len(callers), node.s.url, vs)
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	slices.Sort(ids)
	time.Sleep(500 * time.Millisecond) // records are written off the call's path
	return ids
}

// hangUp has every caller hang up (a BYE to the node that carries its call
// now) and waits until every callee saw its call close.
func hangUp(t *testing.T, callers, callees []*peers.Baresip) {
	t.Helper()
	for _, p := range callers {
		if err := p.Hangup(); err != nil {
			t.Error(err)
		}
	}
	for i, p := range callees {
		if _, err := p.WaitEvent(peers.EventCallClosed, 10*time.Second); err != nil {
			t.Errorf("callee %d: %v", i+1, err)
		}
	}
}

// Issue 12 point 3: a node of three killed with kill -9: once its
// heartbeat lapses, the survivors claim its calls (spread over both) and
// re-INVITE the parties onto their own relays; the calls keep their
// session ids and talk again, and end normally when the callers hang up.
func TestANodesCallsMoveToTheSurvivorsWhenItDies(t *testing.T) {
	const calls = 4
	callers, callees, configFile := phonePairs(t, calls)
	nodes, daemons := startCluster(t, 3, "127.0.0.1:9", configFile)
	ids := callsThrough(t, nodes[0], callers, callees)

	daemons[0].Kill(t)
	per := carried(t, "after node-1 died", nodes[1:], ids, 20*time.Second)
	t.Logf("node-2 took %d calls, node-3 %d", per[0], per[1])
	// Each survivor's event stream has a RECOVERED for every call: those it
	// re-adopted and, passed on, those the other did.
	for i, n := range nodes[1:] {
		st := n.s.openStream(t, adminToken, "?since=0")
		st.waitFor(t, 5*time.Second, fmt.Sprintf("RECOVERED for each of %v on node-%d", ids, i+2), func(msgs []streamMsg) bool {
			got := map[string]bool{}
			for _, m := range msgs {
				if m.Type == "RECOVERED" && slices.Contains(ids, m.SessionID) {
					got[m.SessionID] = true
				}
			}
			return len(got) == len(ids)
		})
	}
	// Issue 12 point 2: each survivor's API lists every call, its own and
	// the other's, and an operation on the other's call is forwarded to
	// it and answered as if local.
	for i, n := range nodes[1:] {
		var all []legView
		if !callctltest.Eventually(5*time.Second, func() bool {
			all = n.s.legViews(t)
			got := make([]string, 0, len(all))
			for _, v := range all {
				got = append(got, v.ID)
			}
			slices.Sort(got)
			return slices.Equal(got, ids)
		}) {
			t.Errorf("node-%d lists %+v; want every call %v", i+2, all, ids)
		}
	}
	var remote legView
	for _, v := range nodes[1].s.legViews(t) {
		if v.Node == "node-3" {
			remote = v
		}
	}
	if remote.ID == "" {
		remote = legView{}
		for _, v := range nodes[2].s.legViews(t) {
			if v.Node == "node-2" {
				remote = v
			}
		}
		nodes[1], nodes[2] = nodes[2], nodes[1] // ask the node that does not carry it
	}
	if remote.ID == "" {
		t.Fatal("no call carried by one survivor listed by the other")
	}
	for _, op := range []string{"hold", "unhold"} {
		if r := nodes[1].s.do(t, adminToken, "POST", "/api/v1/sessions/"+remote.ID+"/"+op, ""); r.status != 200 {
			t.Fatalf("%s on node %s of a call carried by node %s: %v; want 200", op, nodes[1].s.url, remote.Node, r)
		}
	}
	if r := nodes[1].s.do(t, adminToken, "POST", "/api/v1/sessions/"+remote.ID+"/unhold", ""); r.status != 409 {
		t.Errorf("unhold of a call in IN_CALL, forwarded: %v; want 409 as if local", r)
	}
	// The hold was audited on the node the client asked; the other
	// survivor, which carried it out, reads that record too.
	var audited struct {
		Requests []struct {
			SessionID string `json:"sessionId"`
			Node      string `json:"node"`
			Result    string `json:"result"`
		} `json:"requests"`
		Nodes []string `json:"nodes"`
	}
	nodes[2].s.do(t, adminToken, "GET", "/api/v1/audit?operation=hold", "").decode(t, &audited)
	if len(audited.Requests) != 1 || audited.Requests[0].SessionID != remote.ID || audited.Requests[0].Node != nodes[1].name ||
		audited.Requests[0].Result != "ok" || !slices.Equal(audited.Nodes, []string{"node-2", "node-3"}) {
		t.Errorf("GET /api/v1/audit?operation=hold on %s: %+v; want the one hold of %s, ok, audited on %s; nodes node-2 and node-3",
			nodes[2].name, audited, remote.ID, nodes[1].name)
	}
	nodes[2].s.do(t, adminToken, "GET", "/api/v1/audit?node=node-9", "").expectError(t, 404, "not_found")
	nodes[2].s.do(t, adminToken, "GET", "/api/v1/audit?before=5", "").expectError(t, 400, "invalid_argument")
	hangUp(t, callers, callees)
	// Each call's record was written by the node that carried it last;
	// every survivor lists all of them.
	for _, n := range nodes[1:] {
		var got []string
		if !callctltest.Eventually(10*time.Second, func() bool {
			var body struct {
				Calls []struct {
					SessionID string `json:"sessionId"`
					Node      string `json:"node"`
				} `json:"calls"`
			}
			n.s.do(t, adminToken, "GET", "/api/v1/calls", "").decode(t, &body)
			got = got[:0]
			for _, c := range body.Calls {
				if c.Node == "node-2" || c.Node == "node-3" {
					got = append(got, c.SessionID)
				}
			}
			slices.Sort(got)
			return slices.Equal(got, ids)
		}) {
			t.Errorf("GET /api/v1/calls on %s lists %v written by the survivors; want every call %v", n.name, got, ids)
		}
	}
}

// Issue 12 point 4: SIGTERM on a node of three hands its calls to the
// other two instead of hanging them up, then the node exits 0: none of the
// calls ends, they talk on through the others.
func TestSIGTERMHandsANodesCallsToTheOthers(t *testing.T) {
	const calls = 4
	callers, callees, configFile := phonePairs(t, calls)
	nodes, daemons := startCluster(t, 3, "127.0.0.1:9", configFile)
	ids := callsThrough(t, nodes[0], callers, callees)

	start := time.Now()
	daemons[0].Signal(t, syscall.SIGTERM, 25*time.Second)
	if code := daemons[0].ExitCode(); code != 0 {
		t.Errorf("node-1 exited %d after SIGTERM; want 0", code)
	}
	if !strings.Contains(daemons[0].Output(), "calls handed to the other nodes") {
		t.Errorf("node-1's log does not say it handed its calls over")
	}
	t.Logf("node-1 stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	carried(t, "after node-1 left", nodes[1:], ids, 10*time.Second)
	hangUp(t, callers, callees)
}
