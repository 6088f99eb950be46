// Package browser checks callctl's JavaScript SDK (web/sdk/callctl.js), its
// listen-in (WebRTC) and the supervisor console (web/index.html) in a real
// browser: each test starts callctl in-process with the web root
// embedded (internal/app, web.FS), puts a SIPp call through it (test/peers,
// test/sipp), and drives headless Chromium with chromedp on a page of
// callctl's own origin that imports /sdk/callctl.js, as a supervisor's page
// would. The page wraps fetch and WebSocket so the test sees every request
// the SDK makes; callctl's audit trail (GET /api/v1/audit) says what reached
// the server. Listen-in tests read RTCPeerConnection.getStats() (packets and
// audio energy per track); console tests click through the page as a
// supervisor would and save screenshots under $CALLCTL_ARTIFACTS (else the
// test's temporary directory; the path is logged).
//
// The test binary re-runs itself in a private network namespace with only
// loopback up (TESTING.md: outside one, Chromium sometimes picks the
// machine's other address), so callctl, SIPp and Chromium all share that
// loopback and nothing else. That needs root (CAP_SYS_ADMIN). The tests need
// chromium and sip-tester; scripts/install-test-deps.sh installs them, and a
// missing one fails the test with the command to install it.
package browser
