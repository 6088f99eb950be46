package api

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// pionListener is a supervisor's browser in Go: a PeerConnection with two
// receive-only audio transceivers (caller, callee), as the console makes,
// counting the RTP packets each track brings.
type pionListener struct {
	pc      *webrtc.PeerConnection
	sock    net.PacketConn   // the one UDP socket all its ICE runs on
	packets [2]atomic.Uint64 // by track: caller, callee
	readers sync.WaitGroup   // the tracks' readers
}

// newPionListener makes the PeerConnection and its offer, ICE gathered
// (non-trickle, as callctl answers) on one loopback UDP socket, which
// vanish closes.
func newPionListener(t *testing.T) (*pionListener, string) {
	t.Helper()
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock})
	t.Cleanup(func() { _ = mux.Close() })
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEUDPMux(mux)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	l := &pionListener{pc: pc, sock: sock}
	t.Cleanup(l.close)
	for range 2 {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		i := 0
		if tr.StreamID() == "callee" {
			i = 1
		}
		l.readers.Go(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				l.packets[i].Add(1)
			}
		})
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return l, pc.LocalDescription().SDP
}

// answer applies callctl's answer.
func (l *pionListener) answer(t *testing.T, sdp string) {
	t.Helper()
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatalf("applying callctl's answer: %v", err)
	}
}

// heard is how many packets each track brought so far.
func (l *pionListener) heard() (caller, callee uint64) {
	return l.packets[0].Load(), l.packets[1].Load()
}

// waitHeard waits until both tracks brought more than after.
func (l *pionListener) waitHeard(t *testing.T, what string, after [2]uint64) [2]uint64 {
	t.Helper()
	var got [2]uint64
	if !callctltest.Eventually(15*time.Second, func() bool {
		got[0], got[1] = l.heard()
		return got[0] > after[0] && got[1] > after[1]
	}) {
		t.Fatalf("%s: the tracks brought %v RTP packets (caller, callee); want more than %v on each (connection %s)", what, got, after, l.pc.ConnectionState())
	}
	return got
}

// vanish is a browser whose machine dropped off the network: its socket
// closes, so not a packet more goes out, not even DTLS's close alert.
func (l *pionListener) vanish() { _ = l.sock.Close() }

// close ends the PeerConnection (a DTLS close alert to callctl) and
// waits for the track readers.
func (l *pionListener) close() {
	_ = l.pc.Close()
	l.readers.Wait() // Close ends the tracks, and so their reads
}

// candidatePorts are the ports of an SDP's ICE candidates (RFC 8839 5.1:
// "a=candidate:<foundation> <component> <transport> <priority> <address>
// <port> typ …").
func candidatePorts(sdp string) []int {
	var out []int
	for line := range strings.SplitSeq(sdp, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "a=candidate:"))
		if !strings.HasPrefix(strings.TrimSpace(line), "a=candidate:") || len(f) < 6 {
			continue
		}
		if p, err := strconv.Atoi(f[5]); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// listenBody is the POST .../listen body for an offer.
func listenBody(t *testing.T, sdp string) string {
	data, err := json.Marshal(map[string]string{"type": "offer", "sdp": sdp})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// startListening posts l's offer to node and returns the listen id and
// the answer, applied.
func startListening(t *testing.T, node *restartable, id string, l *pionListener, offer string) (string, string) {
	t.Helper()
	r := node.s.do(t, adminToken, "POST", "/api/v1/sessions/"+id+"/listen", listenBody(t, offer))
	if r.status != 200 {
		t.Fatalf("listen on %s to call %s: %v; want 200", node.s.url, id, r)
	}
	var got struct {
		ListenID string `json:"listenId"`
		SDP      string `json:"sdp"`
	}
	r.decode(t, &got)
	if got.ListenID == "" || got.SDP == "" {
		t.Fatalf("listen: %v; want a listen id and an SDP answer", r)
	}
	l.answer(t, got.SDP)
	return got.ListenID, got.SDP
}

// addClients appends API clients to a configuration file: each name with
// its YAML lines (privileges, scope); it returns their tokens.
func addClients(t *testing.T, configFile string, clients map[string]string) map[string]string {
	t.Helper()
	f, err := os.OpenFile(configFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tokens := map[string]string{}
	fmt.Fprintln(f, "clients:")
	for name, lines := range clients {
		token, hash, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = token
		fmt.Fprintf(f, "  - name: %s\n    token_hash: %q\n%s", name, hash, lines)
	}
	return tokens
}

// listenEvent finds a LISTEN_* event of session id and listener listenID.
func listenEvent(msgs []streamMsg, typ, id, listenID string) (streamMsg, bool) {
	i := slices.IndexFunc(msgs, func(m streamMsg) bool {
		return m.Type == typ && m.SessionID == id && m.Listen != nil && m.Listen.ListenID == listenID
	})
	if i < 0 {
		return streamMsg{}, false
	}
	return msgs[i], true
}

// listeners is the session's listener count as node shows it.
func listeners(t *testing.T, node *restartable, id string) int {
	t.Helper()
	var v struct {
		Listeners int `json:"listeners"`
	}
	node.s.do(t, adminToken, "GET", "/api/v1/sessions/"+id, "").decode(t, &v)
	return v.Listeners
}

// Issue 12: listen-in works from any node. A supervisor talking to
// node-2 listens to a call node-1 carries: node-2 checks and audits the
// request, node-1 runs the listener, so the answer's ICE candidates are
// node-1's (its listen-in port) and the audio comes from node-1; the
// session's events on node-2 show the listener start and stop; DELETE
// through node-2 ends it. A listener started through node-3 outlives
// node-3 (its media never went through it) and is ended by node-1 when
// the browser goes away. A session nobody carries is 404 on both routes.
func TestListenInOnACallAnotherNodeCarries(t *testing.T) {
	callers, callees, configFile := phonePairs(t, 1)
	tokens := addClients(t, configFile, map[string]string{
		"viewer":    "    privileges: [sessions.view]\n",
		"elsewhere": "    privileges: [sessions.view, sessions.listen]\n    scope: ['9\\d+']\n",
	})
	ports := []int{peers.FreeUDPPort(t), peers.FreeUDPPort(t), peers.FreeUDPPort(t)}
	nodes, daemons := startClusterWith(t, 3, "127.0.0.1:9", configFile, func(i int) []string {
		return []string{fmt.Sprintf("CALLCTL_LISTEN_SINGLE_PORT=%d", ports[i]), "CALLCTL_LISTEN_ICE_TIMEOUT=4s"}
	})
	id := callsThrough(t, nodes[0], callers, callees)[0]
	if !callctltest.Eventually(10*time.Second, func() bool {
		return slices.ContainsFunc(nodes[1].s.legViews(t), func(v legView) bool { return v.ID == id && v.Node == "node-1" })
	}) {
		t.Fatalf("node-2 does not list call %s as node-1's: %+v", id, nodes[1].s.legViews(t))
	}
	st := nodes[1].s.openStream(t, adminToken, "")

	// Privilege and scope are node-2's to check: refused there, the offer
	// never reaches node-1.
	l, offer := newPionListener(t)
	nodes[1].s.do(t, tokens["viewer"], "POST", "/api/v1/sessions/"+id+"/listen", listenBody(t, offer)).expectError(t, 403, "forbidden")
	nodes[1].s.do(t, tokens["elsewhere"], "POST", "/api/v1/sessions/"+id+"/listen", listenBody(t, offer)).expectError(t, 404, "not_found")
	if n := listeners(t, nodes[0], id); n != 0 {
		t.Errorf("node-1 has %d listeners after two refused requests; want 0", n)
	}

	// Through node-2: the answer is node-1's, and node-1's audio arrives.
	listenID, answer := startListening(t, nodes[1], id, l, offer)
	cands := candidatePorts(answer)
	if len(cands) == 0 || slices.ContainsFunc(cands, func(p int) bool { return p != ports[0] }) {
		t.Errorf("answer's candidate ports %v; want node-1's listen-in port %d only (node-2's is %d):\n%s", cands, ports[0], ports[1], answer)
	}
	l.waitHeard(t, "listening through node-2", [2]uint64{})
	msgs := st.waitFor(t, 5*time.Second, "LISTEN_STARTED of "+listenID, func(m []streamMsg) bool {
		_, ok := listenEvent(m, "LISTEN_STARTED", id, listenID)
		return ok
	})
	if ev, _ := listenEvent(msgs, "LISTEN_STARTED", id, listenID); ev.Node != "node-1" || ev.Listen.Client != "admin" {
		t.Errorf("LISTEN_STARTED on node-2: node %q, client %q; want node-1 and admin", ev.Node, ev.Listen.Client)
	}
	if n := listeners(t, nodes[1], id); n != 1 {
		t.Errorf("node-2 shows %d listeners on the call; want 1", n)
	}
	// Audited where the client talked: node-2 keeps the request, node-1
	// not (each node's own records, ?node=).
	q := "/api/v1/audit?operation=listen&session=" + url.QueryEscape(id) + "&node="
	var audited struct {
		Requests []struct {
			Client string            `json:"client"`
			Result string            `json:"result"`
			Args   map[string]string `json:"args"`
		} `json:"requests"`
	}
	nodes[1].s.do(t, adminToken, "GET", q+"node-2", "").decode(t, &audited)
	var oks, refused int
	for _, a := range audited.Requests {
		switch {
		case a.Result == "ok" && a.Client == "admin" && a.Args["listenId"] == listenID:
			oks++
		case a.Result == "error" && (a.Client == "viewer" || a.Client == "elsewhere"):
			refused++
		}
	}
	if oks != 1 || refused != 2 || len(audited.Requests) != 3 {
		t.Errorf("node-2's audit of the listens: %+v; want admin's ok with listen id %s and the two refused", audited.Requests, listenID)
	}
	audited.Requests = nil
	nodes[0].s.do(t, adminToken, "GET", q+"node-1", "").decode(t, &audited)
	if len(audited.Requests) != 0 {
		t.Errorf("node-1's audit has %+v; the request was node-2's to audit", audited.Requests)
	}

	// Stopped through node-2: node-1 ends it, and says so.
	if r := nodes[1].s.do(t, adminToken, "DELETE", "/api/v1/sessions/"+id+"/listen/"+listenID, ""); r.status != 200 {
		t.Fatalf("DELETE listen %s through node-2: %v; want 200", listenID, r)
	}
	msgs = st.waitFor(t, 5*time.Second, "LISTEN_STOPPED of "+listenID, func(m []streamMsg) bool {
		_, ok := listenEvent(m, "LISTEN_STOPPED", id, listenID)
		return ok
	})
	if ev, _ := listenEvent(msgs, "LISTEN_STOPPED", id, listenID); ev.Listen.Reason != "stopped" {
		t.Errorf("LISTEN_STOPPED reason %q; want stopped", ev.Listen.Reason)
	}
	nodes[1].s.do(t, adminToken, "DELETE", "/api/v1/sessions/"+id+"/listen/"+listenID, "").expectError(t, 404, "not_found")
	nodes[1].s.do(t, adminToken, "DELETE", "/api/v1/sessions/"+id+"/listen/not-an-id", "").expectError(t, 404, "not_found")
	if e := nodes[1].s.do(t, adminToken, "POST", "/api/v1/sessions/"+id+"/listen", `{"sdp":"v=0\r\n"}`).
		expectError(t, 400, "invalid_argument"); e.Field != "sdp" {
		t.Errorf("an offer that is not one, through node-2: field %q; want sdp", e.Field)
	}

	// A session nobody carries.
	_, offer2 := newPionListener(t)
	nodes[1].s.do(t, adminToken, "POST", "/api/v1/sessions/0123456789abcdef/listen", listenBody(t, offer2)).expectError(t, 404, "not_found")
	nodes[1].s.do(t, adminToken, "DELETE", "/api/v1/sessions/0123456789abcdef/listen/00112233aabbccdd", "").expectError(t, 404, "not_found")

	// Through node-3, which then dies: the listener is node-1's and goes
	// on. When the browser vanishes too (no DTLS close: its socket is
	// gone), node-1 ends it once ICE has heard nothing for
	// listen.ice_timeout (4 s here), and node-2 hears of it.
	l3, offer3 := newPionListener(t)
	listenID3, _ := startListening(t, nodes[2], id, l3, offer3)
	heard := l3.waitHeard(t, "listening through node-3", [2]uint64{})
	daemons[2].Kill(t)
	time.Sleep(time.Second)
	l3.waitHeard(t, "after node-3 died", heard)
	vanished := time.Now()
	l3.vanish()
	msgs = st.waitFor(t, 15*time.Second, "LISTEN_STOPPED of "+listenID3, func(m []streamMsg) bool {
		_, ok := listenEvent(m, "LISTEN_STOPPED", id, listenID3)
		return ok
	})
	ev, _ := listenEvent(msgs, "LISTEN_STOPPED", id, listenID3)
	if ev.Node != "node-1" || ev.Listen.Reason != "ICE failed" {
		t.Errorf("LISTEN_STOPPED of the listener started through node-3: node %q, reason %q; want node-1, ICE failed", ev.Node, ev.Listen.Reason)
	}
	t.Logf("node-1 ended the vanished browser's listener %v after it went", time.Since(vanished).Round(100*time.Millisecond))
	if !callctltest.Eventually(5*time.Second, func() bool { return listeners(t, nodes[1], id) == 0 }) {
		t.Errorf("node-2 shows %d listeners on the call after both ended; want 0", listeners(t, nodes[1], id))
	}
	hangUp(t, callers, callees)
}

// Issue 12: the listen-ins of a node that dies are lost with it (not
// recovered, docs/cluster.md). Asked for while the owner is gone and not
// yet replaced, a listen-in gets 504, as the other forwarded operations
// do; once a survivor has re-adopted the call, nobody listens to it, and a
// listen-in asked through either survivor is run by the new owner, with
// its candidates and its audio.
func TestListenInAfterTheCallsOwnerDied(t *testing.T) {
	callers, callees, configFile := phonePairs(t, 1)
	ports := []int{peers.FreeUDPPort(t), peers.FreeUDPPort(t), peers.FreeUDPPort(t)}
	nodes, daemons := startClusterWith(t, 3, "127.0.0.1:9", configFile, func(i int) []string {
		return []string{fmt.Sprintf("CALLCTL_LISTEN_SINGLE_PORT=%d", ports[i])}
	})
	ids := callsThrough(t, nodes[0], callers, callees)
	id := ids[0]
	if !callctltest.Eventually(10*time.Second, func() bool {
		return slices.ContainsFunc(nodes[1].s.legViews(t), func(v legView) bool { return v.ID == id && v.Node == "node-1" })
	}) {
		t.Fatalf("node-2 does not list call %s as node-1's", id)
	}
	l, offer := newPionListener(t)
	startListening(t, nodes[1], id, l, offer)
	l.waitHeard(t, "listening through node-2", [2]uint64{})

	_, offer2 := newPionListener(t)
	daemons[0].Kill(t)
	r := nodes[1].s.do(t, adminToken, "POST", "/api/v1/sessions/"+id+"/listen", listenBody(t, offer2))
	r.expectError(t, 504, "timeout")
	t.Logf("listen-in with the owner gone: %s", r.body)

	carried(t, "after node-1 died", nodes[1:], ids, 20*time.Second)
	owner := 1 // index of the node that carries the call now
	for _, v := range nodes[1].s.legViews(t) {
		if v.ID == id && v.Node == "node-3" {
			owner = 2
		}
	}
	if !callctltest.Eventually(5*time.Second, func() bool { return listeners(t, nodes[1], id) == 0 }) {
		t.Errorf("node-2 shows %d listeners on the re-adopted call; want 0 (node-1's died with it)", listeners(t, nodes[1], id))
	}
	for _, via := range []int{1, 2} {
		l, offer := newPionListener(t)
		_, answer := startListening(t, nodes[via], id, l, offer)
		if cands := candidatePorts(answer); len(cands) == 0 || slices.ContainsFunc(cands, func(p int) bool { return p != ports[owner] }) {
			t.Errorf("listen-in through node-%d: candidate ports %v; want node-%d's (the new owner) %d only", via+1, cands, owner+1, ports[owner])
		}
		l.waitHeard(t, fmt.Sprintf("listening through node-%d to node-%d's call", via+1, owner+1), [2]uint64{})
		l.close()
	}
	hangUp(t, callers, callees)
}
