package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// listenHarness is the page's side of the listen-in tests, run once after
// navigation: it counts the RTCPeerConnections the page makes, imports the
// SDK, connects with the token (%s), keeps the LISTEN_* events in
// window.__events, and defines window.__stats(listen), which reads what
// getStats() says of each of the listen-in's tracks. It resolves to the
// connection state.
const listenHarness = `(async () => {
  const token = %s;
  window.__pcs = [];
  const RealPeerConnection = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends RealPeerConnection {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
  window.__events = [];
  window.sdk = await import("/sdk/callctl.js");
  window.client = await sdk.connect(location.origin, token);
  client.onEvent((ev) => {
    if (ev.type.startsWith("LISTEN")) {
      window.__events.push({ type: ev.type, sessionId: ev.sessionId, listen: ev.listen, listeners: ev.session?.listeners ?? -1 });
    }
  });
  window.__stats = async (l) => {
    const report = await l.peerConnection.getStats();
    const codecs = {};
    const inbound = [];
    report.forEach((s) => {
      if (s.type === "codec") codecs[s.id] = s.mimeType;
      if (s.type === "inbound-rtp" && s.kind === "audio") inbound.push(s);
    });
    const of = (track) => {
      const s = inbound.find((x) => x.trackIdentifier === track.id);
      return s ? { packetsReceived: s.packetsReceived ?? 0, bytesReceived: s.bytesReceived ?? 0, totalAudioEnergy: s.totalAudioEnergy ?? 0, codec: codecs[s.codecId] ?? "" } : null;
    };
    return { inbound: inbound.length, caller: of(l.caller), callee: of(l.callee), connection: l.peerConnection.connectionState };
  };
  return client.connectionState;
})()`

// trackStats is what getStats() says of one listen-in track.
type trackStats struct {
	PacketsReceived  int     `json:"packetsReceived"`
	BytesReceived    int     `json:"bytesReceived"` // RTP payload bytes (W3C webrtc-stats)
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
	Codec            string  `json:"codec"`
}

// listenStats is window.__stats for a listen-in.
type listenStats struct {
	Inbound    int         `json:"inbound"` // inbound-rtp audio entries of the PeerConnection
	Caller     *trackStats `json:"caller"`
	Callee     *trackStats `json:"callee"`
	Connection string      `json:"connection"`
}

// hearing reports whether both tracks have packets and audio energy.
func (s listenStats) hearing() bool {
	ok := func(t *trackStats) bool { return t != nil && t.PacketsReceived > 0 && t.TotalAudioEnergy > 0 }
	return s.Inbound == 2 && ok(s.Caller) && ok(s.Callee)
}

// listenEvent is one entry of window.__events.
type listenEvent struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Listen    struct {
		ListenID string `json:"listenId"`
		Client   string `json:"client"`
		Reason   string `json:"reason"`
	} `json:"listen"`
	Listeners int `json:"listeners"`
}

// asUser makes an evaluation count as a user's gesture, as a click would:
// the page may then start audio playback.
func asUser(p *runtime.EvaluateParams) {
	yes := true
	p.UserGesture = &yes
}

// evalAsUser is eval run as a user's gesture.
func evalAsUser[T any](t *testing.T, p *page, what, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise, asUser))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// codec is a G.711 flavour a SIPp call can carry.
type codec struct {
	name     string // PCMU, PCMA
	pt       int    // its static RTP payload type
	encoding string // sox's -e
}

var (
	pcmu = codec{name: "PCMU", pt: 0, encoding: "u-law"}
	pcma = codec{name: "PCMA", pt: 8, encoding: "a-law"}
)

// scenario writes the named test/sipp scenario, which offers and streams
// PCMU, changed to c, into a new directory and returns its path.
func (c codec) scenario(t *testing.T, name string) string {
	t.Helper()
	data, err := sipp.Load(name)
	if err != nil {
		t.Fatalf("sipp: %v", err)
	}
	xml := string(data)
	if c != pcmu {
		for _, r := range [][2]string{
			{"RTP/AVP 0\n", fmt.Sprintf("RTP/AVP %d\n", c.pt)},
			{"a=rtpmap:0 PCMU/8000", fmt.Sprintf("a=rtpmap:%d %s/8000", c.pt, c.name)},
			{`rtp_stream="tone.raw,-1,0"`, fmt.Sprintf(`rtp_stream="tone.raw,-1,%d"`, c.pt)},
			{"RTP/AVP( [0-9]+)* 0(", fmt.Sprintf("RTP/AVP( [0-9]+)* %d(", c.pt)}, // the UAS's check of the offer
		} {
			if !strings.Contains(xml, r[0]) && !strings.HasPrefix(r[0], "RTP/AVP(") {
				t.Fatalf("%s has no %q to make it %s", name, r[0], c.name)
			}
			xml = strings.ReplaceAll(xml, r[0], r[1])
		}
	}
	path := filepath.Join(t.TempDir(), strings.Replace(name, "pcmu", strings.ToLower(c.name), 1))
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// audio writes dir/tone.raw in c for SIPp's rtp_stream: a freq Hz sine,
// 0.4 s on and 0.4 s off when gaps (so a level meter moves), else steady.
func (c codec) audio(t *testing.T, dir string, freq int, gaps bool) {
	t.Helper()
	bin, err := exec.LookPath("sox")
	if err != nil {
		t.Fatalf("sox not found in PATH: run scripts/install-test-deps.sh as root")
	}
	args := []string{"-n", "-r", "8000", "-c", "1", "-e", c.encoding, "-t", "raw", filepath.Join(dir, "tone.raw"), "synth"}
	if gaps {
		args = append(args, "0.4", "sine", strconv.Itoa(freq), "pad", "0", "0.4")
	} else {
		args = append(args, "2", "sine", strconv.Itoa(freq))
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("sox %v: %v\n%s", args, err, out)
	}
}

// listenCall is a SIPp call through callctl for listen-in tests: the caller
// streams a 440 Hz tone and the callee 660 Hz in c, and the caller hangs up
// after talk.
type listenCall struct {
	cc  *callctl
	uac *peers.SIPp
	uas *peers.SIPp
}

// startListenCall starts callctl (configure may change its configuration)
// and a SIPp call through it that lasts talk once answered.
func startListenCall(t *testing.T, c codec, talk time.Duration, gaps bool, configure func(*config.Config)) *listenCall {
	t.Helper()
	uasDir, uacDir := t.TempDir(), t.TempDir()
	c.audio(t, uasDir, 660, gaps)
	c.audio(t, uacDir, 440, gaps)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: c.scenario(t, "uas_pcmu_rtp.xml"), Dir: uasDir, Timeout: 60 * time.Second})
	cc := startCallctlWith(t, uas.LocalAddr(), configure)
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   c.scenario(t, "uac_pcmu_rtp.xml"),
		RemoteAddr: cc.cfg.SIP.Listen,
		Service:    "1000",
		Keys:       map[string]string{"duration": strconv.Itoa(int(talk.Milliseconds()))},
		Dir:        uacDir,
		Timeout:    60 * time.Second,
	})
	return &listenCall{cc: cc, uac: uac, uas: uas}
}

// openListenPage loads the SDK in p with token and waits for the call to be
// IN_CALL; it returns the session id.
func openListenPage(t *testing.T, p *page, cc *callctl, token string) string {
	t.Helper()
	p.navigate(t, cc.url()+"/sdk/")
	tok, _ := json.Marshal(token)
	if state := eval[string](t, p, "loading the SDK and connecting", fmt.Sprintf(listenHarness, tok)); state != "open" {
		t.Fatalf("after connect() the connection state is %q; want open", state)
	}
	waitUntil(t, p, 10*time.Second, "the call IN_CALL", `client.sessions()[0]?.sessionState === "IN_CALL"`,
		`JSON.stringify(client.sessions().map((s) => s.raw))`)
	return eval[string](t, p, "reading the session id", `client.sessions()[0].sessionId`)
}

// listeners is callctl's listener count for the session, over the API.
func (c *callctl) listeners(t *testing.T, id string) int {
	t.Helper()
	var v struct {
		Listeners *int `json:"listeners"`
	}
	c.get(t, "/api/v1/sessions/"+url.PathEscape(id), &v)
	if v.Listeners == nil {
		t.Fatalf("GET /api/v1/sessions/%s has no listeners field", id)
	}
	return *v.Listeners
}

// waitListeners polls callctl until the session's listener count is want.
func (c *callctl) waitListeners(t *testing.T, id string, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		n := c.listeners(t, id)
		if n == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("callctl counts %d listeners on the session after %v; want %d", n, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startListenIn runs startListen() in the page (as a user's click, so the
// audio element may play) and attaches the stream to an <audio> element, as
// a page would to hear it: Chromium computes the tracks' audio energy only
// for audio it plays out. It waits until getStats shows packets and audio
// energy on both tracks and returns how long that took from the call and
// the stats then.
func startListenIn(t *testing.T, p *page, id, name string) (time.Duration, listenStats) {
	t.Helper()
	type started struct {
		Millis   float64     `json:"millis"`
		Resolved float64     `json:"resolved"`
		ListenID string      `json:"listenId"`
		Tracks   int         `json:"tracks"`
		Distinct bool        `json:"distinct"`
		Same     bool        `json:"same"`
		Stats    listenStats `json:"stats"`
		Error    string      `json:"error"`
	}
	got := evalAsUser[started](t, p, "startListen()", fmt.Sprintf(`(async () => {
  const s = client.getSession(%q);
  const t0 = performance.now();
  let l;
  try {
    l = await s.startListen({ timeout: 4000 });
  } catch (e) {
    return { error: String(e.code) + ": " + e.message };
  }
  const resolved = performance.now() - t0;
  window[%q] = l;
  const audio = document.createElement("audio");
  document.body.append(audio);
  l.attach(audio).catch((e) => console.log("play() refused: " + e));
  let stats = await __stats(l);
  while (performance.now() - t0 < 5000) {
    stats = await __stats(l);
    const ok = (x) => x && x.packetsReceived > 0 && x.totalAudioEnergy > 0;
    if (stats.inbound === 2 && ok(stats.caller) && ok(stats.callee)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    millis: performance.now() - t0, resolved, listenId: l.listenId, tracks: l.stream.getAudioTracks().length,
    distinct: l.caller !== l.callee && l.caller.kind === "audio" && l.callee.kind === "audio", same: s.listen === l, stats,
  };
})()`, id, name))
	if got.Error != "" {
		t.Fatalf("startListen() rejected: %s", got.Error)
	}
	if got.ListenID == "" || got.Tracks != 2 || !got.Distinct || !got.Same {
		t.Errorf("startListen() resolved with listenId %q, %d tracks in the stream, distinct caller and callee audio tracks %v, session.listen the same %v; want an id, 2, true, true",
			got.ListenID, got.Tracks, got.Distinct, got.Same)
	}
	t.Logf("%s: startListen() resolved in %.0f ms; audio energy on both tracks after %.0f ms", name, got.Resolved, got.Millis)
	return time.Duration(got.Millis * float64(time.Millisecond)), got.Stats
}

// TestListenInHearsBothPartiesOfAPCMUAndAPCMACall is listen-in's
// acceptance, for each G.711 flavour. A SIPp call through callctl; the SDK
// in Chromium starts listening: within 2 s getStats() shows two inbound
// audio tracks, caller and callee, with packets and audio energy, in the
// call's codec (passed through, not transcoded), and callctl counts one
// listener and says LISTEN_STARTED. stopListen() closes the PeerConnection,
// callctl's count returns to 0 and it says LISTEN_STOPPED. A second
// listen-in, never stopped, ends with the call: the SDK closes its
// PeerConnection and callctl counts nobody.
func TestListenInHearsBothPartiesOfAPCMUAndAPCMACall(t *testing.T) {
	for _, c := range []codec{pcmu, pcma} {
		t.Run(c.name, func(t *testing.T) {
			p := startChromium(t)
			call := startListenCall(t, c, 7*time.Second, false, nil)
			cc := call.cc
			id := openListenPage(t, p, cc, adminToken)

			took, stats := startListenIn(t, p, id, "first")
			if !stats.hearing() || took > 2*time.Second {
				t.Errorf("after %v getStats shows %+v (caller %+v, callee %+v); want two inbound audio tracks with packets and audio energy within 2 s",
					took, stats, stats.Caller, stats.Callee)
			}
			want := "audio/" + c.name
			if stats.Caller == nil || stats.Callee == nil || !strings.EqualFold(stats.Caller.Codec, want) || !strings.EqualFold(stats.Callee.Codec, want) {
				t.Errorf("the tracks carry %+v and %+v; want %s on both, as the call has it", stats.Caller, stats.Callee, want)
			}
			if n := cc.listeners(t, id); n != 1 {
				t.Errorf("callctl counts %d listeners while the page listens; want 1", n)
			}
			waitUntil(t, p, 3*time.Second, "LISTEN_STARTED", `__events.some((e) => e.type === "LISTEN_STARTED" && e.listen.listenId === first.listenId)`, `JSON.stringify(__events)`)
			waitUntil(t, p, 3*time.Second, "the session's listener count in the SDK", `client.getSession(first.session.sessionId).listeners === 1`, `JSON.stringify(client.sessions()[0].raw)`)

			// stopListen: closed here, released there.
			type stopped struct {
				OK         bool   `json:"ok"`
				Connection string `json:"connection"`
				Signaling  string `json:"signaling"`
				Ended      string `json:"ended"`
				Listen     bool   `json:"listen"`
			}
			st := eval[stopped](t, p, "stopListen()", fmt.Sprintf(`(async () => {
  const s = client.getSession(%q);
  const r = await s.stopListen();
  const ended = await first.ended;
  return { ok: r.ok, connection: first.peerConnection.connectionState, signaling: first.peerConnection.signalingState, ended, listen: s.listen !== null };
})()`, id))
			if !st.OK || st.Connection != "closed" || st.Signaling != "closed" || st.Ended != "stopped" || st.Listen {
				t.Errorf("after stopListen(): %+v; want ok, the PeerConnection closed, ended \"stopped\", session.listen null", st)
			}
			if n := cc.listeners(t, id); n != 0 {
				t.Errorf("callctl counts %d listeners after stopListen() resolved; want 0", n)
			}
			waitUntil(t, p, 3*time.Second, "LISTEN_STOPPED", `__events.some((e) => e.type === "LISTEN_STOPPED" && e.listen.listenId === first.listenId)`, `JSON.stringify(__events)`)

			// Again, and this time the caller hangs up first.
			if took, stats := startListenIn(t, p, id, "second"); !stats.hearing() || took > 2*time.Second {
				t.Errorf("a second startListen(): after %v getStats shows %+v; want both tracks heard within 2 s", took, stats)
			}
			cc.waitListeners(t, id, 1, time.Second)
			waitUntil(t, p, 15*time.Second, "the listen-in ending with the call", `second.peerConnection.connectionState === "closed"`,
				`JSON.stringify({ state: client.getSession(second.session.sessionId).sessionState, connection: second.peerConnection.connectionState, events: __events })`)
			waitUntil(t, p, 3*time.Second, "LISTEN_STOPPED for the second", `__events.some((e) => e.type === "LISTEN_STOPPED" && e.listen.listenId === second.listenId)`, `JSON.stringify(__events)`)
			type why struct {
				Ended string `json:"ended"`
				Event string `json:"event"`
			}
			w := eval[why](t, p, "reading why it ended", `(async () => ({
  ended: await second.ended,
  event: __events.find((e) => e.type === "LISTEN_STOPPED" && e.listen.listenId === second.listenId).listen.reason,
}))()`)
			if w.Ended == "" || w.Ended != w.Event || strings.Contains(w.Ended, "DTLS") || w.Ended == "stopped" {
				t.Errorf("the second listen-in ended %q, callctl's LISTEN_STOPPED said %q; want callctl ending it for the call's end, and the SDK passing on its reason", w.Ended, w.Event)
			}
			if open := eval[int](t, p, "counting open PeerConnections", `__pcs.filter((pc) => pc.signalingState !== "closed").length`); open != 0 {
				t.Errorf("%d PeerConnections are still open after the call ended; want 0", open)
			}
			var ev []listenEvent
			ev = eval[[]listenEvent](t, p, "reading the events", `__events`)
			var kinds []string
			for _, e := range ev {
				kinds = append(kinds, fmt.Sprintf("%s %s (%d)", e.Type, e.Listen.Client, e.Listeners))
			}
			if want := []string{"LISTEN_STARTED admin (1)", "LISTEN_STOPPED admin (0)", "LISTEN_STARTED admin (1)", "LISTEN_STOPPED admin (0)"}; !slices.Equal(kinds, want) {
				t.Errorf("the page saw the listen events %v; want %v", kinds, want)
			}
			call.uac.ExpectPass(t, 15*time.Second)
			call.uas.ExpectPass(t, 10*time.Second)
		})
	}
}

// TestTwoBrowsersListenToOneCallAndAClosedTabIsReleased: two browsers
// listen to the same call at once and both hear both parties; callctl
// counts two listeners. Closing the second browser's tab mid-listen (no
// stopListen) is noticed by callctl within its ICE timeout, while the first
// browser goes on hearing the call.
func TestTwoBrowsersListenToOneCallAndAClosedTabIsReleased(t *testing.T) {
	const iceTimeout = 3 * time.Second
	first, second := startChromium(t), startChromium(t)
	call := startListenCall(t, pcmu, 30*time.Second, false, func(cfg *config.Config) {
		cfg.Listen.ICETimeout = iceTimeout
	})
	cc := call.cc
	id := openListenPage(t, first, cc, adminToken)
	tab := second.newTab(t)
	openListenPage(t, tab, cc, adminToken)

	for _, p := range []struct {
		name string
		page *page
	}{{"first browser", first}, {"second browser", tab}} {
		if took, stats := startListenIn(t, p.page, id, "listening"); !stats.hearing() || took > 2*time.Second {
			t.Errorf("%s: after %v getStats shows %+v; want both tracks heard within 2 s", p.name, took, stats)
		}
	}
	if n := cc.listeners(t, id); n != 2 {
		t.Errorf("callctl counts %d listeners with two browsers listening; want 2", n)
	}
	before := eval[listenStats](t, first, "reading the first browser's stats", `__stats(listening)`)

	tab.close()
	took := cc.waitListeners(t, id, 1, iceTimeout+5*time.Second)
	t.Logf("callctl released the closed tab's listener after %v", took)
	waitUntil(t, first, 3*time.Second, "LISTEN_STOPPED of the closed tab", `__events.filter((e) => e.type === "LISTEN_STOPPED").length === 1`, `JSON.stringify(__events)`)

	time.Sleep(300 * time.Millisecond)
	after := eval[listenStats](t, first, "reading the first browser's stats again", `__stats(listening)`)
	if after.Caller == nil || after.Callee == nil || before.Caller == nil || before.Callee == nil ||
		after.Caller.PacketsReceived <= before.Caller.PacketsReceived || after.Callee.PacketsReceived <= before.Callee.PacketsReceived {
		t.Errorf("the first browser's packets went from %+v/%+v to %+v/%+v; want both tracks still receiving", before.Caller, before.Callee, after.Caller, after.Callee)
	}
	eval[bool](t, first, "stopListen()", fmt.Sprintf(`client.getSession(%q).stopListen().then((r) => r.ok)`, id))
	cc.waitListeners(t, id, 0, time.Second)
}

// TestStartListenWithoutTheListenPrivilegeIsRefusedAndLeavesNoPeerConnection:
// a client with sessions.view and sessions.hold but not sessions.listen
// asks to listen: the SDK rejects with callctl's 403, no PeerConnection is
// left open, callctl counts no listener and its audit trail has the refusal.
func TestStartListenWithoutTheListenPrivilegeIsRefusedAndLeavesNoPeerConnection(t *testing.T) {
	p := startChromium(t)
	var token string
	call := startListenCall(t, pcmu, 5*time.Second, false, func(cfg *config.Config) {
		token = viewerClient(t, cfg, "holder", "sessions.view", "sessions.hold")
	})
	cc := call.cc
	id := openListenPage(t, p, cc, token)

	type refusal struct {
		Resolved     bool   `json:"resolved"`
		CallctlError bool   `json:"callctlError"`
		Code         string `json:"code"`
		Status       int    `json:"status"`
		Message      string `json:"message"`
		Can          bool   `json:"can"`
		Open         int    `json:"open"`
		Listen       bool   `json:"listen"`
	}
	r := eval[refusal](t, p, "startListen() without sessions.listen", fmt.Sprintf(`(async () => {
  const s = client.getSession(%q);
  const out = await s.startListen().then(
    () => ({ resolved: true }),
    (e) => ({ callctlError: e instanceof sdk.CallctlError, code: e.code, status: e.status, message: e.message }));
  return { ...out, can: client.can(sdk.Privilege.LISTEN), open: __pcs.filter((pc) => pc.signalingState !== "closed").length, listen: s.listen !== null };
})()`, id))
	if r.Resolved || !r.CallctlError || r.Status != 403 || r.Code != "forbidden" || !strings.Contains(r.Message, "sessions.listen") {
		t.Errorf("startListen() without the privilege: %+v; want a CallctlError with callctl's 403 forbidden naming sessions.listen", r)
	}
	if r.Can || r.Open != 0 || r.Listen {
		t.Errorf("client.can(listen) %v, %d PeerConnections open, session.listen set %v; want false, 0, false", r.Can, r.Open, r.Listen)
	}
	if n := cc.listeners(t, id); n != 0 {
		t.Errorf("callctl counts %d listeners; want 0", n)
	}
	var trail struct {
		Requests []audit.Request `json:"requests"`
	}
	cc.get(t, "/api/v1/audit?session="+url.QueryEscape(id), &trail)
	var ops []string
	for _, rec := range trail.Requests {
		ops = append(ops, fmt.Sprintf("%s %s %d", rec.Client, rec.Operation, rec.Status))
	}
	if !slices.Equal(ops, []string{"holder listen 403"}) {
		t.Errorf("callctl's audit trail for the session has %v; want [holder listen 403]", ops)
	}
}

// TestConsoleListenShowsAMovingLevelMeterPerParty: in the console, Listen
// on a call whose parties talk in bursts starts a listen-in whose two level
// meters, caller and callee, rise and fall; the listener count shows 1 and
// the log says who started listening; Stop listening brings both back.
func TestConsoleListenShowsAMovingLevelMeterPerParty(t *testing.T) {
	p := startChromium(t)
	call := startListenCall(t, pcmu, 20*time.Second, true, nil)
	cc := call.cc
	run(t, p, "sizing the window", chromedp.EmulateViewport(1440, 900))
	p.navigate(t, cc.url()+"/")
	signIn(t, p, adminToken)
	row := `document.querySelector("tbody.session")`
	waitUntil(t, p, 10*time.Second, "the call IN_CALL in the console",
		row+`?.querySelector('[data-field="state"]').textContent === "IN_CALL"`, consoleState)
	id := eval[string](t, p, "reading the session id", row+`.dataset.sessionId`)
	rowSel := fmt.Sprintf(`tbody[data-session-id=%q]`, id)

	run(t, p, "clicking Listen", chromedp.Click(chromedp.CSS(rowSel+` button[data-op="listen"]`)))
	waitUntil(t, p, 5*time.Second, "Stop listening offered", fmt.Sprintf(`!%s.querySelector('[data-op="stop-listen"]').hidden`, row), consoleState)
	waitUntil(t, p, 3*time.Second, "the listener count 1 in the row", row+`.querySelector('[data-field="listeners"]').textContent === "1"`, consoleState)

	type levels struct {
		Caller []float64 `json:"caller"`
		Callee []float64 `json:"callee"`
	}
	lv := eval[levels](t, p, "sampling the level meters", fmt.Sprintf(`(async () => {
  const b = %s;
  const out = { caller: [], callee: [] };
  for (let i = 0; i < 40; i++) {
    out.caller.push(b.querySelector('meter[data-meter="caller"]').value);
    out.callee.push(b.querySelector('meter[data-meter="callee"]').value);
    await new Promise((r) => setTimeout(r, 50));
  }
  return out;
})()`, row))
	for party, values := range map[string][]float64{"caller": lv.Caller, "callee": lv.Callee} {
		lo, hi := slices.Min(values), slices.Max(values)
		if hi < 0.3 || hi-lo < 0.2 {
			t.Errorf("the %s's level meter read %v over 2 s (%.2f to %.2f); want it rising above 0.3 and moving by 0.2 or more", party, values, lo, hi)
		}
	}
	waitUntil(t, p, 3*time.Second, "the listen-in in the event log",
		`[...document.querySelectorAll("#event-log li")].some((li) => /admin started listening/.test(li.textContent))`, consoleState)

	shot := artifactPath(t, "console-listening.png")
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
	t.Logf("console screenshot while listening: %s", shot)

	run(t, p, "clicking Stop listening", chromedp.Click(chromedp.CSS(rowSel+` button[data-op="stop-listen"]`)))
	waitUntil(t, p, 5*time.Second, "Listen offered again, the meters at 0 and the count 0", fmt.Sprintf(`(() => {
  const b = %s;
  return !b.querySelector('[data-op="listen"]').hidden && b.querySelector('[data-field="listeners"]').textContent === "0" &&
    [...b.querySelectorAll("meter")].every((m) => m.value === 0);
})()`, row), consoleState)
	cc.waitListeners(t, id, 0, time.Second)
}
