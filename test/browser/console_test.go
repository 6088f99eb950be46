package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// artifactsEnv names a directory where tests leave files for people to look
// at (screenshots); without it they go to the test's temporary directory.
const artifactsEnv = "CALLCTL_ARTIFACTS"

// artifactPath returns where the test should write an artifact called name.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory %s: %v", dir, err)
	}
	return filepath.Join(dir, name)
}

// viewerClient adds a client to cfg that may only view sessions, and
// returns its token.
func viewerClient(t *testing.T, cfg *config.Config, name string, privileges ...string) string {
	t.Helper()
	token, hash, err := auth.NewToken()
	if err != nil {
		t.Fatalf("auth.NewToken: %v", err)
	}
	cfg.Clients = append(cfg.Clients, config.Client{Name: name, TokenHash: hash, Privileges: privileges})
	return token
}

// run runs chromedp actions in the page, failing the test with what.
func run(t *testing.T, p *page, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// signIn fills the console's sign-in form with token and submits it.
func signIn(t *testing.T, p *page, token string) {
	t.Helper()
	run(t, p, "waiting for the sign-in form", chromedp.WaitVisible(chromedp.CSS("#token")))
	eval[bool](t, p, "clearing the token field", `(document.getElementById("token").value = "") === ""`)
	run(t, p, "signing in",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`#sign-in button[type="submit"]`)),
	)
}

// consoleState is what the console shows, read from its DOM.
const consoleState = `JSON.stringify({
  signIn: !document.getElementById("sign-in").hidden,
  signInError: document.getElementById("sign-in-error").textContent,
  who: document.getElementById("who").textContent,
  rows: [...document.querySelectorAll("tbody.session")].map((b) => ({
    id: b.dataset.sessionId,
    text: b.querySelector("tr.summary").innerText,
    ops: [...b.querySelectorAll("[data-op]")].map((c) => c.dataset.op + (c.disabled ? " (disabled)" : "")),
    status: [...b.querySelectorAll("[data-status]")].map((s) => s.dataset.status + ": " + s.textContent).filter((s) => !s.endsWith(": ")),
  })),
  log: [...document.querySelectorAll("#event-log li")].slice(0, 12).map((li) => li.innerText.replace(/\s+/g, " ")),
})`

// TestConsoleShowsTheLiveCallHoldsAndUnholdsItAndOffersAViewerNoControls is
// the console's acceptance. A SIPp caller calls a SIPp callee through
// callctl; a supervisor signs in to the console at / with an admin token:
// the call appears with its parties and ticking durations; Forward with no
// number says why in words beside it; Hold puts both SIPp parties on hold
// (their scenarios check a=sendonly) and Unhold resumes them (a=sendrecv),
// the table and the event log following. A screenshot of the console is
// saved as an artifact. Signing out forgets the token; a wrong token is
// refused in words; a client with only sessions.view sees the same call with
// no controls at all.
func TestConsoleShowsTheLiveCallHoldsAndUnholdsItAndOffersAViewerNoControls(t *testing.T) {
	p := startChromium(t)
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_held_by_callctl.xml"), Dir: dir, Timeout: 45 * time.Second})
	var viewerToken string
	cc := startCallctlWith(t, uas.LocalAddr(), func(cfg *config.Config) {
		viewerToken = viewerClient(t, cfg, "wallboard", "sessions.view")
	})

	run(t, p, "sizing the window", chromedp.EmulateViewport(1440, 900))
	watchCSP(t, p)
	p.navigate(t, cc.url()+"/")
	signIn(t, p, adminToken)
	waitUntil(t, p, 10*time.Second, "the console after signing in", `!document.getElementById("console").hidden`, consoleState)
	type storage struct {
		URL     string `json:"url"`
		Session string `json:"session"`
		Local   int    `json:"local"`
		Input   string `json:"input"`
	}
	st := eval[storage](t, p, "reading where the token is", `({ url: location.href, session: sessionStorage.getItem("callctl.token"), local: localStorage.length, input: document.getElementById("token").value })`)
	if st.Session != adminToken || st.Local != 0 || strings.Contains(st.URL, adminToken) || st.Input != "" {
		t.Errorf("after signing in: URL %s, sessionStorage token %q, %d localStorage items, token field %q; want the token in sessionStorage only",
			st.URL, st.Session, st.Local, st.Input)
	}

	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_held_by_callctl.xml"),
		RemoteAddr: cc.cfg.SIP.Listen,
		Service:    "1000",
		Keys:       map[string]string{"duration": "7000"},
		Dir:        dir,
		Timeout:    45 * time.Second,
	})
	row := `document.querySelector("tbody.session")`
	stateIs := func(state string) string {
		return fmt.Sprintf(`%s?.querySelector('[data-field="state"]').textContent === %q`, row, state)
	}
	waitUntil(t, p, 10*time.Second, "the call in the table, IN_CALL", stateIs("IN_CALL"), consoleState)
	type rowView struct {
		ID      string   `json:"id"`
		Caller  string   `json:"caller"`
		Callee  string   `json:"callee"`
		Talk    string   `json:"talk"`
		Ops     []string `json:"ops"`
		Count   string   `json:"count"`
		Meters  int      `json:"meters"`
		Buttons []string `json:"buttons"`
	}
	readRow := func() rowView {
		return eval[rowView](t, p, "reading the call's row", `(() => {
  const b = document.querySelector("tbody.session");
  return {
    id: b.dataset.sessionId,
    caller: b.querySelector('[data-field="caller"]').innerText,
    callee: b.querySelector('[data-field="callee"]').innerText,
    talk: b.querySelector('[data-field="talk"]').textContent,
    ops: [...new Set([...b.querySelectorAll("[data-op]")].map((c) => c.dataset.op))],
    count: document.getElementById("call-count").textContent,
    meters: b.querySelectorAll("meter").length,
    buttons: [...b.querySelectorAll("button")].map((c) => c.textContent),
  };
})()`)
	}
	first := readRow()
	id := first.ID
	rowSel := fmt.Sprintf(`tbody[data-session-id=%q]`, id)
	if !strings.Contains(first.Caller, "SIPp") || !strings.Contains(first.Caller, "sipp") || !strings.Contains(first.Callee, "1000") || first.Count != "1" {
		t.Errorf("the row shows caller %q, callee %q, %s live calls; want SIPp (sipp), 1000, and 1", first.Caller, first.Callee, first.Count)
	}
	wantOps := []string{"hold", "unhold", "transfer", "forward", "hangup", "close", "dtmf", "listen", "stop-listen"}
	for _, op := range wantOps {
		if !strings.Contains(" "+strings.Join(first.Ops, " ")+" ", " "+op+" ") {
			t.Errorf("the admin's controls are %v; %s is missing", first.Ops, op)
		}
	}
	if first.Meters != 2 {
		t.Errorf("the listen controls have %d level meters; want 2 (caller, callee)", first.Meters)
	}
	waitUntil(t, p, 3*time.Second, "the talk time ticking", fmt.Sprintf(`%s.querySelector('[data-field="talk"]').textContent !== %q`, row, first.Talk), consoleState)

	// An argument the SDK refuses: the words appear beside the control and
	// nothing changes.
	run(t, p, "forwarding to no number", chromedp.Click(chromedp.CSS(rowSel+` button[data-op="forward"]`)))
	waitUntil(t, p, 3*time.Second, "the forward error in words",
		fmt.Sprintf(`/Forward failed: .*phoneNumber/.test(%s.querySelector('[data-status="forward"]').textContent)`, row), consoleState)

	run(t, p, "clicking Hold", chromedp.Click(chromedp.CSS(rowSel+` button[data-op="hold"]`)))
	waitUntil(t, p, 10*time.Second, "the call ON_HOLD in the table", stateIs("ON_HOLD"), consoleState)
	waitUntil(t, p, 3*time.Second, "Unhold enabled and Hold disabled",
		fmt.Sprintf(`!%[1]s.querySelector('[data-op="unhold"]').disabled && %[1]s.querySelector('[data-op="hold"]').disabled`, row), consoleState)
	waitUntil(t, p, 3*time.Second, "the hold in the event log",
		`[...document.querySelectorAll("#event-log li")].some((li) => /IN_CALL → ON_HOLD/.test(li.textContent))`, consoleState)

	shot := artifactPath(t, "console.png")
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
	t.Logf("console screenshot: %s", shot)

	run(t, p, "clicking Unhold", chromedp.Click(chromedp.CSS(rowSel+` button[data-op="unhold"]`)))
	waitUntil(t, p, 10*time.Second, "the call back IN_CALL in the table", stateIs("IN_CALL"), consoleState)

	// Signing out forgets the token; a wrong one is refused in words.
	run(t, p, "signing out", chromedp.Click(chromedp.CSS("#sign-out")))
	waitUntil(t, p, 3*time.Second, "the sign-in form", `!document.getElementById("sign-in").hidden && document.getElementById("console").hidden`, consoleState)
	if left := eval[int](t, p, "reading sessionStorage", `sessionStorage.length`); left != 0 {
		t.Errorf("after signing out sessionStorage holds %d items; want none", left)
	}
	signIn(t, p, "not-a-token")
	waitUntil(t, p, 5*time.Second, "the refusal in words", `/refused the token/.test(document.getElementById("sign-in-error").textContent)`, consoleState)

	// The viewer: the same call, no controls.
	signIn(t, p, viewerToken)
	waitUntil(t, p, 10*time.Second, "the viewer's console with the call", fmt.Sprintf(`!document.getElementById("console").hidden && !!document.querySelector(%q)`, rowSel), consoleState)
	viewer := readRow()
	if len(viewer.Ops) != 0 || len(viewer.Buttons) != 0 || viewer.Meters != 0 {
		t.Errorf("a sessions.view client is offered the controls %v (buttons %v, %d meters); want none", viewer.Ops, viewer.Buttons, viewer.Meters)
	}
	if who := eval[string](t, p, "reading who is signed in", `document.getElementById("who").textContent`); !strings.Contains(who, "wallboard") {
		t.Errorf("the header says %q; want the client's name, wallboard", who)
	}
	waitUntil(t, p, 15*time.Second, "the caller's hang-up in the viewer's table", stateIs("CALLER_HUNG_UP"), consoleState)

	// Everything above ran under callctl's Content-Security-Policy.
	expectCSPHeld(t, p)

	uacOK := uac.ExpectPass(t, 15*time.Second)
	uasOK := uas.ExpectPass(t, 10*time.Second)
	if !uacOK || !uasOK {
		t.Errorf("the SIPp parties did not both see the hold (a=sendonly) and resume (a=sendrecv) re-INVITEs the console asked for")
	}
}
