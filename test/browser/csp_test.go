package browser

import (
	"context"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// cspWatcher is a script added to every document of a tab before its own
// scripts run: it keeps each Content-Security-Policy violation the page
// reports (the directive and what was blocked) in window.__cspViolations.
const cspWatcher = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});`

// watchCSP installs cspWatcher in the tab; call it before navigating.
func watchCSP(t *testing.T, p *page) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument,
		cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatcher}); err != nil {
		t.Fatalf("installing the CSP violation watcher: %v", err)
	}
}

// expectCSPHeld checks that the page works within callctl's CSP (it
// reported no violation so far) and that the policy is in force: an inline
// script put into the page is blocked.
func expectCSPHeld(t *testing.T, p *page) {
	t.Helper()
	if v := eval[[]string](t, p, "reading CSP violations", `window.__cspViolations`); len(v) != 0 {
		t.Errorf("the console broke its Content-Security-Policy: %q", v)
	}
	ran := eval[bool](t, p, "injecting an inline script", `(() => {
  const s = document.createElement("script");
  s.textContent = "window.__inlineRan = true";
  document.head.append(s);
  return window.__inlineRan === true;
})()`)
	if ran {
		t.Error("an inline script ran in the console: no Content-Security-Policy is in force")
	}
	if v := eval[[]string](t, p, "reading CSP violations", `window.__cspViolations`); len(v) != 1 {
		t.Errorf("the inline script was reported as %q; want one script-src violation", v)
	}
}
