package pbx

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

const clusterToken = "pbx-cluster-admin-token"

// node is one callctl daemon of a three-node cluster behind Kamailio.
type node struct {
	*callctltest.Node
	name string
	port int // its SIP port, as Kamailio's ladder shows it
	d    *callctltest.Daemon
}

// startNodes runs a callctl daemon on each SIP port of 127.0.0.1, their
// embedded NATS servers one cluster, trunk their trunk, and waits until
// every one is ready.
func startNodes(t *testing.T, k *kamailio, ports []int) []*node {
	t.Helper()
	env := callctltest.ClusterEnv(t, len(ports))
	nodes := make([]*node, len(ports))
	for i, p := range ports {
		n := &node{Node: callctltest.NewNode(t, fmt.Sprintf("127.0.0.1:%d", p), k.addr(), clusterToken),
			name: fmt.Sprintf("node-%d", i+1), port: p}
		n.Env = append(n.Env, env[i]...)
		n.Env = append(n.Env, "CALLCTL_CALLS_TRANSFER_TIMEOUT=15s")
		n.d = n.Launch(t)
		k.name(p, n.name)
		nodes[i] = n
	}
	for _, n := range nodes {
		n.d.WaitReady(t, n.API.URL, 40*time.Second)
	}
	return nodes
}

// carriedBy waits until the nodes, between them, carry want sessions, each
// IN_CALL with audio both ways on both legs through the node that carries
// it, and returns each session's carrier (an index into nodes).
func carriedBy(t *testing.T, what string, nodes []*node, want int, timeout time.Duration) map[string]int {
	t.Helper()
	var owner map[string]int
	var seen []callctltest.SessionView
	if !callctltest.Eventually(timeout, func() bool {
		owner, seen = map[string]int{}, nil
		for i, n := range nodes {
			for _, v := range n.API.Sessions(t) {
				if v.Node == "" && v.State == "IN_CALL" && v.Talking() {
					owner[v.ID] = i
				}
				seen = append(seen, v)
			}
		}
		return len(owner) == want
	}) {
		t.Fatalf("%s: want %d sessions IN_CALL with audio both ways between the nodes; have %d: %+v", what, want, len(owner), seen)
	}
	return owner
}

// listsAll checks that every node's API lists exactly the sessions ids
// among its live ones, its own and the other nodes'.
func listsAll(t *testing.T, what string, nodes []*node, ids []string) {
	t.Helper()
	for _, n := range nodes {
		var got []string
		var all []callctltest.SessionView
		if !callctltest.Eventually(10*time.Second, func() bool {
			got = got[:0]
			all = n.API.Sessions(t)
			for _, v := range all {
				if v.State == "IN_CALL" {
					got = append(got, v.ID)
				}
			}
			slices.Sort(got)
			return slices.Equal(got, ids)
		}) {
			t.Errorf("%s: %s lists %d sessions IN_CALL %v; want all %d: %v; it lists %+v", what, n.name, len(got), got, len(ids), ids, all)
		}
	}
}

// post is an operation on a session through n's API; anything but 200
// fails the test.
func (n *node) post(t *testing.T, id, op, body string) {
	t.Helper()
	if status, data := n.API.Do(t, "POST", "/api/v1/sessions/"+id+"/"+op, body); status != http.StatusOK {
		t.Fatalf("%s on %s of session %s: %d %s; want 200", op, n.name, id, status, data)
	}
}

// state is the session's state as n's API says.
func (n *node) state(t *testing.T, id string) string {
	t.Helper()
	status, data := n.API.Do(t, "GET", "/api/v1/sessions/"+id, "")
	var v callctltest.SessionView
	if status != http.StatusOK || json.Unmarshal(data, &v) != nil {
		t.Fatalf("GET session %s on %s: %d %s; want 200 and a session", id, n.name, status, data)
	}
	return v.State
}

// Issue 12 acceptance (b): three callctl nodes, their embedded NATS
// servers one cluster, behind Kamailio's dispatcher (configs/kamailio,
// WITH_DISPATCHER). 30 calls come in through Kamailio: 29 from SIPp to a
// SIPp callee registered as 3001, and alice (2001) to bob (3002), baresip
// phones registered there; round-robin gives each node 10. Each node's API
// lists all 30; a node that does not carry alice's call holds, resumes and
// transfers it (to carol, 4003), the owner doing it on the wire. Then
// node-1 is killed with kill -9: the survivors re-INVITE its parties
// (through Kamailio, on each dialog's route set) onto their relays, every
// call carries audio again with its id, and the calls of the survivors get
// no re-INVITE at all. Finally every call is hung up through the API and
// every party gets its BYE.
func TestThreeNodesBehindKamailioShareThirtyCallsAndOutliveOneKilled(t *testing.T) {
	const sippCalls = 29
	ports := []int{peers.FreeUDPPort(t), peers.FreeUDPPort(t), peers.FreeUDPPort(t)}
	kam := startKamailio(t, ports...)
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_talks_until_bye.xml"), Calls: sippCalls, Dir: dir, Timeout: 5 * time.Minute})
	kam.name(uas.LocalPort(), "sipp-uas")
	register(t, kam, "3001", "sip:3001@"+uas.LocalAddr())
	alice, bob, carol := startPhone(t, "2001", kam), startPhone(t, "3002", kam), startPhone(t, "4003", kam)
	nodes := startNodes(t, kam, ports)

	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: sipp.Scenario(t, "uac_talks_until_bye.xml"), RemoteAddr: kam.addr(),
		Calls: sippCalls, Rate: 10, Limit: sippCalls, Service: "3001", Dir: dir, Timeout: 5 * time.Minute,
	})
	kam.name(uac.LocalPort(), "sipp-uac")
	if err := alice.Dial("sip:3002@" + kam.addr()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*phone{alice, bob} {
		if _, err := p.WaitEvent(peers.EventCallEstablished, 15*time.Second); err != nil {
			t.Fatalf("%s: %v", p.user, err)
		}
	}
	owner := carriedBy(t, "30 calls through Kamailio", nodes, sippCalls+1, 30*time.Second)
	per := make([]int, len(nodes))
	for _, i := range owner {
		per[i]++
	}
	if !slices.Equal(per, []int{10, 10, 10}) {
		t.Errorf("the nodes carry %v calls; want 10 each (Kamailio's round-robin over three nodes)", per)
	}
	ids := slices.Sorted(maps.Keys(owner))
	listsAll(t, "before the kill", nodes, ids)

	// alice's call, run from a node that does not carry it.
	var aliceCall string
	for _, v := range nodes[0].API.Sessions(t) {
		if v.Caller.Number == "2001" {
			aliceCall = v.ID
		}
	}
	if aliceCall == "" {
		t.Fatal("node-1 does not list alice's call")
	}
	carrier := nodes[owner[aliceCall]]
	other := nodes[(owner[aliceCall]+1)%len(nodes)]
	t.Logf("alice's call %s is carried by %s; operated from %s", aliceCall, carrier.name, other.name)
	isReinvite := func(sdp string) func(m sipMessage) bool {
		return func(m sipMessage) bool {
			return m.Request("INVITE") && strings.Contains(m.Header("To"), "tag=") && sdpHas(m, sdp)
		}
	}
	other.post(t, aliceCall, "hold", "")
	for _, p := range []*phone{alice, bob} {
		kam.waitRelayed(t, "the hold re-INVITE to "+p.user, carrier.port, p.sipPort, 5*time.Second, isReinvite("a=sendonly"))
	}
	if s := other.state(t, aliceCall); s != "ON_HOLD" {
		t.Errorf("%s says alice's call is %s after the hold; want ON_HOLD", other.name, s)
	}
	other.post(t, aliceCall, "unhold", "")
	for _, p := range []*phone{alice, bob} {
		kam.waitRelayed(t, "the unhold re-INVITE to "+p.user, carrier.port, p.sipPort, 5*time.Second, isReinvite("a=sendrecv"))
	}
	other.post(t, aliceCall, "transfer", `{"transferor":"2001","target":"4003"}`)
	kam.waitRelayed(t, "the REFER to bob", carrier.port, bob.sipPort, 5*time.Second, func(m sipMessage) bool { return m.Request("REFER") })
	if _, err := carol.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatalf("carol (the transfer's target): %v", err)
	}
	if _, err := alice.WaitEvent(peers.EventCallClosed, 10*time.Second); err != nil {
		t.Errorf("alice (the transferor): %v", err)
	}
	if !callctltest.Eventually(5*time.Second, func() bool { return other.state(t, aliceCall) == "TRANSFER_COMPLETED" }) {
		t.Errorf("%s says alice's call is %s after the transfer; want TRANSFER_COMPLETED", other.name, other.state(t, aliceCall))
	}
	// bob's call to carol is a new session; the 30 live calls now.
	owner = carriedBy(t, "after the transfer", nodes, sippCalls+1, 20*time.Second)
	ids = slices.Sorted(maps.Keys(owner))
	listsAll(t, "after the transfer", nodes, ids)

	// kill -9 node-1: its calls move to the survivors.
	victim := 0
	var moved []string
	for id, i := range owner {
		if i == victim {
			moved = append(moved, id)
		}
	}
	time.Sleep(500 * time.Millisecond) // records are written off the call's path
	killed := time.Now()
	nodes[victim].d.Kill(t)
	survivors := slices.Delete(slices.Clone(nodes), victim, victim+1)
	after := carriedBy(t, "after node-1 was killed", survivors, len(ids), 30*time.Second)
	if got := slices.Sorted(maps.Keys(after)); !slices.Equal(got, ids) {
		t.Errorf("after the kill the survivors carry %v; want the same sessions as before %v", got, ids)
	}
	spread := make([]int, len(survivors))
	for _, id := range moved {
		spread[after[id]]++
	}
	t.Logf("node-1 carried %d calls; node-2 took %d, node-3 %d", len(moved), spread[0], spread[1])
	if slices.Contains(spread, 0) {
		t.Errorf("node-1's %d calls went %v to node-2 and node-3; want them spread over both", len(moved), spread)
	}
	listsAll(t, "after the kill", survivors, ids)
	// The survivors' own calls never noticed: every re-INVITE after the
	// kill belongs to one of node-1's calls, two to each (one per party).
	perCall := map[string]int{}
	for _, m := range kam.Messages(t) {
		inDialog := m.Request("INVITE") && strings.Contains(m.Header("To"), "tag=")
		if !m.Sent && inDialog && m.Time.After(killed) && (m.SrcPort == ports[1] || m.SrcPort == ports[2]) {
			perCall[m.CallID]++
		}
	}
	reinvites := 0
	for _, n := range perCall {
		reinvites += n
	}
	if reinvites != 2*len(moved) || len(perCall) != 2*len(moved) {
		t.Errorf("after the kill Kamailio relayed %d re-INVITEs from the survivors in %d dialogs; want 2 for each of node-1's %d calls (one per leg), none for the others",
			reinvites, len(perCall), len(moved))
	}

	// Every call hung up through the API: each party gets a BYE.
	for _, id := range ids {
		survivors[0].post(t, id, "hangup", "")
	}
	uac.ExpectPass(t, 30*time.Second)
	uas.ExpectPass(t, 30*time.Second)
	for _, p := range []*phone{bob, carol} {
		if _, err := p.WaitEvent(peers.EventCallClosed, 10*time.Second); err != nil {
			t.Errorf("%s: %v", p.user, err)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("SIP ladder at Kamailio:\n%s", kam.Ladder(t))
	}
}
