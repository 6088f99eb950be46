package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/web"
)

// adminToken is the all-privileges token of the test's callctl.
const adminToken = "browser-test-admin-token"

// callctl is one callctl running in-process for a test, serving the web
// root (the SDK) beside its API.
type callctl struct {
	app *app.App
	cfg config.Config
}

// startCallctl starts callctl on free loopback ports with the web root
// embedded, sending B legs to trunk. The test's cleanup stops it and waits.
func startCallctl(t *testing.T, trunk string) *callctl {
	t.Helper()
	return startCallctlWith(t, trunk, nil)
}

// startCallctlWith is startCallctl with configure (if not nil) applied to
// the configuration last, e.g. to add clients.
func startCallctlWith(t *testing.T, trunk string, configure func(*config.Config)) *callctl {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	cfg.SIP.Transports = []string{"udp", "tcp"}
	cfg.SIP.Allow = []string{"127.0.0.0/8"}
	cfg.API.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	lo, hi := peers.FreePortRange(t, 16)
	cfg.Media.IP = "127.0.0.1"
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Media.Timeout = 15 * time.Second
	cfg.Calls.RingTimeout = 15 * time.Second
	cfg.Shutdown.DrainTimeout = 2 * time.Second
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = adminToken
	cfg.Trunk.Address = trunk
	if configure != nil {
		configure(&cfg)
	}

	log := zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel))
	a, err := app.NewWithOptions(cfg, log, app.Options{Web: web.FS(), Out: io.Discard})
	if err != nil {
		t.Fatalf("app.NewWithOptions: %v", err)
	}
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
	})
	return &callctl{app: a, cfg: cfg}
}

// url is callctl's API and web base URL.
func (c *callctl) url() string { return c.app.APIURL() }

// get fetches an API path with the admin token and decodes its JSON answer
// into out; anything but 200 fails the test.
func (c *callctl) get(t *testing.T, path string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.url()+path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the answer: %v", path, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, res.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// chromiumInstallHint says how to get the browser; the test fails with it
// rather than skipping, so a machine without Chromium never passes quietly.
const chromiumInstallHint = "run scripts/install-test-deps.sh as root (it runs apt-get install -y --no-install-recommends chromium)"

// chromiumPath finds the Chromium binary or fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium not found in PATH: %s", chromiumInstallHint)
	return ""
}

// page is a headless Chromium tab and what its console said.
type page struct {
	ctx context.Context
	// cancel closes the tab (the browser, for the first tab).
	cancel context.CancelFunc

	mu      sync.Mutex
	console []string
}

// startChromium starts headless Chromium with the flags of TESTING.md and a
// fresh profile, and returns its first tab. The page's console messages and
// uncaught exceptions are printed if the test fails. The test's cleanup
// stops the browser.
func startChromium(t *testing.T) *page {
	t.Helper()
	bin := chromiumPath(t)
	profile := t.TempDir() // removed after the browser exits: cleanups run last-in first-out
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		// Listen-in: without it Chromium gathers no ICE candidate on loopback,
		// the only interface of the test's network namespace.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	p := &page{ctx: ctx, cancel: cancelTab}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() {
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Logf("browser console:\n%s", strings.Join(p.console, "\n"))
		}
	})
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatalf("starting chromium (%s): %v", bin, err)
	}
	return p
}

// newTab opens another tab in p's browser. Its close() closes it as a
// user closing the tab would; the test's cleanup closes it otherwise.
func (p *page) newTab(t *testing.T) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	tab := &page{ctx: ctx, cancel: cancel}
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			tab.mu.Lock()
			defer tab.mu.Unlock()
			t.Logf("second tab's console:\n%s", strings.Join(tab.console, "\n"))
		}
	})
	if err := chromedp.Listen(ctx, tab.record); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}

// close closes the tab (for the first tab of a browser, the browser).
func (p *page) close() { p.cancel() }

// record keeps console output and exceptions; it runs in chromedp's read
// loop, so it only appends.
func (p *page) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = fmt.Sprintf("exception: %s %s:%d", d.Text, d.URL, d.LineNumber+1)
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	p.mu.Lock()
	p.console = append(p.console, line)
	p.mu.Unlock()
}

// navigate opens url in the tab.
func (p *page) navigate(t *testing.T, url string) {
	t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
}

// eval runs a JavaScript expression in the page, waits for it if it is a
// promise, and decodes its value into T. An exception fails the test.
func eval[T any](t *testing.T, p *page, what, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitUntil polls a JavaScript expression in the page until it is truthy,
// failing the test after timeout with what and the value of explain.
func waitUntil(t *testing.T, p *page, timeout time.Duration, what, expression, explain string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expression,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		state, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](explain))
		t.Fatalf("no %s within %v (%v); page: %s", what, timeout, err, state)
	}
}
