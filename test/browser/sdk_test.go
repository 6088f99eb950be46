package browser

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// harness is the page's side of the test, run once after navigation: it
// wraps fetch and WebSocket to see every request the SDK makes, imports the
// SDK from callctl, connects with the token (%s), and logs the SDK's
// callbacks in window.__log. It resolves to the connection state.
const harness = `(async () => {
  const token = %s;
  window.__fetches = [];
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    window.__fetches.push({ method: (init && init.method) || "GET", url: String(input && input.url ? input.url : input) });
    return realFetch.call(this, input, init);
  };
  window.__sockets = [];
  const RealWebSocket = window.WebSocket;
  window.WebSocket = class extends RealWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      window.__sockets.push(this);
    }
  };
  const log = (window.__log = []);
  window.sdk = await import("/sdk/callctl.js");
  window.client = await sdk.connect(location.origin, token, {
    // Long enough that an operation made right after a drop finishes before
    // the client is back: the resume must bring its events.
    reconnectDelay: 4000,
    onConnectionStateChanged: (state) => log.push({ what: "connection", state, sockets: window.__sockets.length }),
  });
  client.onSessionCreated((s) => {
    log.push({ what: "created", id: s.sessionId, state: s.sessionState, caller: s.caller, callee: s.callee });
    s.onSessionStateChanged((session, state) =>
      log.push({ what: "state", id: session.sessionId, state, same: session === s, sockets: window.__sockets.length }));
  });
  client.onSessionClosed((s) => log.push({ what: "closed", id: s.sessionId, state: s.sessionState }));
  return client.connectionState;
})()`

// entry is one line of window.__log.
type entry struct {
	What    string `json:"what"` // connection, created, state, closed
	ID      string `json:"id"`
	State   string `json:"state"`
	Caller  string `json:"caller"`
	Callee  string `json:"callee"`
	Same    bool   `json:"same"`
	Sockets int    `json:"sockets"`
}

// thrown describes what a Session method did when called in the page.
type thrown struct {
	Threw        bool   `json:"threw"`
	CallctlError bool   `json:"callctlError"`
	Code         string `json:"code"`
	Field        string `json:"field"`
	Status       int    `json:"status"`
	Message      string `json:"message"`
	Returned     string `json:"returned"` // typeof what it returned, when it did not throw
}

// TestSDKFollowsALiveSIPpCallThroughHoldAndUnholdAndThrowsBeforeSending is
// the SDK's acceptance in a real browser. A page of callctl's origin
// imports /sdk/callctl.js and connects; then a SIPp caller calls a SIPp
// callee through callctl. The page must see the call appear with its
// parties; the seed's argument errors must throw synchronously with nothing
// reaching callctl (the page's fetch and callctl's audit trail both say
// so), while a request that passes the SDK's checks does reach it; hold()
// and unhold() from the page must put both SIPp parties on hold and back
// (their scenarios check the re-INVITEs) with onSessionStateChanged
// reporting ON_HOLD then IN_CALL, the IN_CALL arriving through a resumed
// event stream after the page's socket dropped; and the caller's hang-up
// must end the session with onSessionClosed.
func TestSDKFollowsALiveSIPpCallThroughHoldAndUnholdAndThrowsBeforeSending(t *testing.T) {
	p := startChromium(t)
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_held_by_callctl.xml"), Dir: dir, Timeout: 45 * time.Second})
	cc := startCallctl(t, uas.LocalAddr())

	// The page: callctl's own origin, so the SDK's requests are same-origin.
	p.navigate(t, cc.url()+"/sdk/")
	token, _ := json.Marshal(adminToken)
	if state := eval[string](t, p, "loading the SDK and connecting", fmt.Sprintf(harness, token)); state != "open" {
		t.Fatalf("after connect() the connection state is %q; want open", state)
	}
	type request struct{ Method, URL string }
	fetches := func() []request { return eval[[]request](t, p, "reading the page's fetches", `window.__fetches`) }
	if got := fetches(); len(got) != 2 || got[0].Method != "GET" || !strings.HasSuffix(got[0].URL, "/api/v1/me") ||
		got[1].Method != "GET" || !strings.HasSuffix(got[1].URL, "/api/v1/sessions") {
		t.Errorf("connect() made the requests %v; want GET /api/v1/me (who am I), then GET /api/v1/sessions", got)
	}
	type identity struct {
		Name       string   `json:"name"`
		Privileges []string `json:"privileges"`
		Targets    []string `json:"targets"`
		CanListen  bool     `json:"canListen"`
	}
	if me := eval[identity](t, p, "reading the client's identity", `({ name: client.name, privileges: client.privileges, targets: client.targets, canListen: client.can(sdk.Privilege.LISTEN) })`); me.Name == "" ||
		!slices.Contains(me.Privileges, "sessions.hold") || !me.CanListen || me.Targets == nil || len(me.Targets) != 0 {
		t.Errorf("client.name %q, privileges %v, targets %v, can(listen) %v; want the admin's name, all privileges and [] targets (any the policy allows)",
			me.Name, me.Privileges, me.Targets, me.CanListen)
	}
	type socket struct {
		URL      string `json:"url"`
		Protocol string `json:"protocol"`
	}
	sockets := func() []socket {
		return eval[[]socket](t, p, "reading the page's sockets", `window.__sockets.map((s) => ({ url: s.url, protocol: s.protocol }))`)
	}
	first := sockets()
	if len(first) != 1 {
		t.Fatalf("connect() opened %d WebSockets; want 1", len(first))
	}
	if u, err := url.Parse(first[0].URL); err != nil || u.Path != "/api/v1/events" || u.Query().Has("access_token") || u.Query().Has("since") {
		t.Errorf("the event stream's URL is %s; want /api/v1/events with the token in the subprotocol, not the URL, and no since on a first connect", first[0].URL)
	}
	if first[0].Protocol != "callctl.v1" {
		t.Errorf("the event stream's subprotocol is %q; want callctl.v1 (chosen by callctl)", first[0].Protocol)
	}

	// The call, started once the page listens.
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_held_by_callctl.xml"),
		RemoteAddr: cc.cfg.SIP.Listen,
		Service:    "1000",
		Keys:       map[string]string{"duration": "1000"},
		Dir:        dir,
		Timeout:    45 * time.Second,
	})
	const explainLog = `JSON.stringify(window.__log)`
	waitUntil(t, p, 10*time.Second, "onSessionCreated", `window.__log.some((e) => e.what === "created")`, explainLog)
	waitUntil(t, p, 10*time.Second, "onSessionStateChanged to IN_CALL", `window.__log.some((e) => e.what === "state" && e.state === "IN_CALL")`, explainLog)
	created := pageLog(t, p, "created")[0]
	id := created.ID
	if created.Caller != "sipp" || created.Callee != "1000" {
		t.Errorf("onSessionCreated got caller %q, callee %q; want sipp (the From user) and 1000 (the number dialled)", created.Caller, created.Callee)
	}
	var listed struct {
		Sessions []struct {
			ID     string `json:"id"`
			Caller struct {
				Number string `json:"number"`
			} `json:"caller"`
		} `json:"sessions"`
	}
	cc.get(t, "/api/v1/sessions", &listed)
	if len(listed.Sessions) != 1 || listed.Sessions[0].ID != id {
		t.Fatalf("callctl lists the sessions %+v; want the one the page saw, %s", listed.Sessions, id)
	}

	// The Session's properties, as the seed's product has them.
	type props struct {
		Listed            []string `json:"listed"`
		Same              bool     `json:"same"`
		SessionID         string   `json:"sessionId"`
		SessionState      string   `json:"sessionState"`
		Caller            string   `json:"caller"`
		Callee            string   `json:"callee"`
		CallerDisplayName string   `json:"callerDisplayName"`
		DialedNumber      string   `json:"dialedNumber"`
		StartIsDate       bool     `json:"startIsDate"`
		StartAgo          float64  `json:"startAgo"`
		TalkDuration      float64  `json:"talkDuration"`
		StateDuration     float64  `json:"stateDuration"`
		TalkLater         float64  `json:"talkLater"`
		RawID             string   `json:"rawId"`
	}
	got := eval[props](t, p, "reading the session's properties", fmt.Sprintf(`(async () => {
  const s = client.getSession(%q);
  const talk = s.talkDuration;
  await new Promise((r) => setTimeout(r, 300));
  return {
    listed: client.sessions().map((x) => x.sessionId), same: client.sessions()[0] === s,
    sessionId: s.sessionId, sessionState: s.sessionState, caller: s.caller, callee: s.callee,
    callerDisplayName: s.callerDisplayName, dialedNumber: s.dialedNumber,
    startIsDate: s.startTime instanceof Date, startAgo: (Date.now() - s.startTime.getTime()) / 1000,
    talkDuration: talk, stateDuration: s.stateDuration, talkLater: s.talkDuration, rawId: s.raw.id,
  };
})()`, id))
	if !slices.Equal(got.Listed, []string{id}) || !got.Same || got.SessionID != id || got.RawID != id {
		t.Errorf("sessions() %v (same object as getSession: %v), sessionId %q, raw.id %q; want [%s], the same object, and %s", got.Listed, got.Same, got.SessionID, got.RawID, id, id)
	}
	if got.SessionState != "IN_CALL" || got.Caller != "sipp" || got.Callee != "1000" || got.DialedNumber != "1000" || got.CallerDisplayName != "SIPp" {
		t.Errorf("session properties %+v; want IN_CALL, caller sipp (display name SIPp), callee and dialled number 1000", got)
	}
	if !got.StartIsDate || got.StartAgo < 0 || got.StartAgo > 30 {
		t.Errorf("startTime is a Date: %v, %.1f s ago; want a Date of the last few seconds", got.StartIsDate, got.StartAgo)
	}
	if got.TalkDuration < 0 || got.TalkLater < got.TalkDuration+0.2 || got.StateDuration < 0.2 || got.StateDuration > 30 {
		t.Errorf("talkDuration %.3f then %.3f after 300 ms, stateDuration %.3f; want durations that grow with the clock", got.TalkDuration, got.TalkLater, got.StateDuration)
	}

	// The seed's synchronous throws: nothing may leave the page.
	before := len(fetches())
	throws := eval[map[string]thrown](t, p, "calling Session methods with bad arguments", fmt.Sprintf(`(() => {
  const s = client.getSession(%q);
  const attempt = (f) => {
    try {
      const r = f();
      if (r && typeof r.catch === "function") r.catch(() => {});
      return { threw: false, returned: typeof r };
    } catch (e) {
      return { threw: true, callctlError: e instanceof sdk.CallctlError, code: e.code, field: e.field, status: e.status, message: String(e.message) };
    }
  };
  return {
    "blindTransfer(non-party, 2000)": attempt(() => s.blindTransfer("5555", "2000")),
    "blindTransfer(caller)": attempt(() => s.blindTransfer(s.caller)),
    "blindTransfer(callee, '')": attempt(() => s.blindTransfer(s.callee, "")),
    "forward()": attempt(() => s.forward()),
    "forward('')": attempt(() => s.forward("")),
    "sendDtmf('x', caller)": attempt(() => s.sendDtmf("x", s.caller)),
    "sendDtmf('12x', caller)": attempt(() => s.sendDtmf("12x", s.caller)),
    "sendDtmf(undefined, caller)": attempt(() => s.sendDtmf(undefined, s.caller)),
    "sendDtmf('1', non-party)": attempt(() => s.sendDtmf("1", "5555")),
  };
})()`, id))
	wantField := map[string]string{
		"blindTransfer(non-party, 2000)": "transferor",
		"blindTransfer(caller)":          "phoneNumber",
		"blindTransfer(callee, '')":      "phoneNumber",
		"forward()":                      "phoneNumber",
		"forward('')":                    "phoneNumber",
		"sendDtmf('x', caller)":          "key",
		"sendDtmf('12x', caller)":        "key",
		"sendDtmf(undefined, caller)":    "key",
		"sendDtmf('1', non-party)":       "phoneNumber",
	}
	for call, field := range wantField {
		th, ok := throws[call]
		switch {
		case !ok:
			t.Errorf("%s: not tried", call)
		case !th.Threw:
			t.Errorf("%s returned a %s; want a synchronous throw", call, th.Returned)
		case !th.CallctlError || th.Code != "invalid_argument" || th.Field != field || th.Status != 0:
			t.Errorf("%s threw %+v; want a CallctlError invalid_argument, field %s, status 0", call, th, field)
		}
	}
	if after := fetches(); len(after) != before {
		t.Errorf("the throwing calls sent %v; want nothing", after[before:])
	}

	// Calls that pass the SDK's checks do reach callctl, and its errors come
	// back as CallctlError: 65 keys are valid keys but more than callctl
	// sends in one request (400). (Listen-in has its own tests.)
	type rejection struct {
		Resolved     bool   `json:"resolved"`
		CallctlError bool   `json:"callctlError"`
		Code         string `json:"code"`
		Field        string `json:"field"`
		Status       int    `json:"status"`
		Message      string `json:"message"`
	}
	rejected := eval[map[string]rejection](t, p, "calling Session methods the server refuses", fmt.Sprintf(`(async () => {
  const s = client.getSession(%q);
  const outcome = (promise) => promise.then(
    () => ({ resolved: true }),
    (e) => ({ callctlError: e instanceof sdk.CallctlError, code: e.code, field: e.field, status: e.status, message: e.message }));
  return {
    sendDtmf: await outcome(s.sendDtmf("1".repeat(65), s.caller)),
  };
})()`, id))
	if r := rejected["sendDtmf"]; !r.CallctlError || r.Status != 400 || r.Code != "invalid_argument" || r.Field != "key" {
		t.Errorf("sendDtmf of 65 keys: %+v; want a CallctlError with callctl's 400 invalid_argument on field key", r)
	}
	if after := fetches(); len(after) != before+1 {
		t.Errorf("the refused call sent %v; want POST .../dtmf", after[before:])
	}

	// hold() and unhold() from the page; the socket drops in between, and
	// unhold's IN_CALL must come through the resumed stream.
	if state := eval[string](t, p, "hold()", fmt.Sprintf(`client.getSession(%q).hold().then((r) => r.session.state)`, id)); state != "ON_HOLD" {
		t.Errorf("hold() resolved with the session in %s; want ON_HOLD", state)
	}
	waitUntil(t, p, 5*time.Second, "onSessionStateChanged to ON_HOLD", `window.__log.some((e) => e.what === "state" && e.state === "ON_HOLD")`, explainLog)
	lastSeq := eval[int](t, p, "dropping the event stream", `(() => { const seq = client.lastSeq; window.__sockets[0].close(); return seq; })()`)
	waitUntil(t, p, 5*time.Second, "reconnecting state", `client.connectionState === "reconnecting"`, explainLog)
	type unheld struct {
		State      string `json:"state"`
		Connection string `json:"connection"`
	}
	u := eval[unheld](t, p, "unhold()", fmt.Sprintf(`client.getSession(%q).unhold().then((r) => ({ state: r.session.state, connection: client.connectionState }))`, id))
	if u.State != "IN_CALL" {
		t.Errorf("unhold() resolved with the session in %s; want IN_CALL", u.State)
	}
	if u.Connection != "reconnecting" {
		t.Errorf("unhold() finished with the connection %s; want it still reconnecting, so that resuming is what brings its events", u.Connection)
	}
	waitUntil(t, p, 10*time.Second, "onSessionStateChanged to IN_CALL after the hold",
		`window.__log.filter((e) => e.what === "state" && e.state === "IN_CALL").length === 2`, explainLog)
	resumed := sockets()
	if len(resumed) != 2 {
		t.Fatalf("%d WebSockets after the drop; want 2", len(resumed))
	}
	if u, err := url.Parse(resumed[1].URL); err != nil || u.Query().Get("since") != strconv.Itoa(lastSeq) {
		t.Errorf("the client reconnected to %s; want since=%d, the last seq it had", resumed[1].URL, lastSeq)
	}

	// The caller hangs up a second after the resume.
	waitUntil(t, p, 10*time.Second, "onSessionClosed", `window.__log.some((e) => e.what === "closed")`, explainLog)
	uacOK := uac.ExpectPass(t, 15*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)

	var walk []string
	for _, e := range pageLog(t, p, "") {
		switch e.What {
		case "created":
			walk = append(walk, "created "+e.State)
		case "state":
			if !e.Same || e.ID != id {
				t.Errorf("onSessionStateChanged called with session %s (the same object: %v); want %s", e.ID, e.Same, id)
			}
			walk = append(walk, e.State)
		case "closed":
			walk = append(walk, "closed "+e.State)
		}
	}
	want := []string{"created SETUP", "RINGING", "IN_CALL", "ON_HOLD", "IN_CALL", "CALLER_HUNG_UP", "closed CALLER_HUNG_UP"}
	// RINGING is skipped when the callee's 200 overtakes its 180 (each SIP
	// message is handled on its own goroutine): SETUP → IN_CALL is legal.
	if len(walk) > 1 && walk[1] == "IN_CALL" {
		want = slices.Delete(want, 1, 2)
	}
	if !slices.Equal(walk, want) {
		t.Errorf("the page saw %v; want %v", walk, want)
	}
	var afterDrop []string
	for _, e := range pageLog(t, p, "state") {
		if e.Sockets == 2 {
			afterDrop = append(afterDrop, e.State)
		}
	}
	if len(afterDrop) == 0 || afterDrop[0] != "IN_CALL" {
		t.Errorf("through the second socket the page saw %v; want IN_CALL first (unhold's, resumed)", afterDrop)
	}
	var conn []string
	for _, e := range pageLog(t, p, "connection") {
		conn = append(conn, e.State)
	}
	if want := []string{"connecting", "open", "reconnecting", "open"}; !slices.Equal(conn, want) {
		t.Errorf("connection states %v; want %v", conn, want)
	}
	type ended struct {
		Listed       int     `json:"listed"`
		State        string  `json:"state"`
		TalkDuration float64 `json:"talkDuration"`
		TalkLater    float64 `json:"talkLater"`
	}
	end := eval[ended](t, p, "reading the ended session", fmt.Sprintf(`(async () => {
  const s = client.getSession(%q);
  const talk = s.talkDuration;
  await new Promise((r) => setTimeout(r, 200));
  return { listed: client.sessions().length, state: s.sessionState, talkDuration: talk, talkLater: s.talkDuration };
})()`, id))
	if end.Listed != 0 || end.State != "CALLER_HUNG_UP" || end.TalkDuration <= 0 || end.TalkLater != end.TalkDuration {
		t.Errorf("after the hang-up: %d live sessions, getSession says %s, talkDuration %.3f then %.3f; want none live, CALLER_HUNG_UP, and a talk time that stopped",
			end.Listed, end.State, end.TalkDuration, end.TalkLater)
	}

	// callctl's audit trail: exactly the requests that passed the checks.
	var trail struct {
		Requests []audit.Request `json:"requests"`
	}
	cc.get(t, "/api/v1/audit?session="+url.QueryEscape(id), &trail)
	var ops []string
	for _, r := range trail.Requests {
		ops = append(ops, fmt.Sprintf("%s %d", r.Operation, r.Status))
	}
	slices.Sort(ops)
	if want := []string{"dtmf 400", "hold 200", "unhold 200"}; !slices.Equal(ops, want) {
		t.Errorf("callctl's audit trail for the session has %v; want %v (nothing from the calls that threw)", ops, want)
	}
	if !uacOK || !uasOK {
		t.Errorf("the SIPp parties did not both see the hold and the resume re-INVITEs (their scenarios check them)")
	}
}

// pageLog returns the entries of window.__log of kind what ("" for all).
func pageLog(t *testing.T, p *page, what string) []entry {
	t.Helper()
	all := eval[[]entry](t, p, "reading the page's log", `window.__log`)
	if what == "" {
		return all
	}
	var out []entry
	for _, e := range all {
		if e.What == what {
			out = append(out, e)
		}
	}
	return out
}
