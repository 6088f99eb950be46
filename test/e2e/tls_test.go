package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// withTLS gives callctl a TLS listener on a free port with leaf as its
// certificate and ca as the CA it verifies TLS callees against.
func withTLS(t *testing.T, ca *peers.TestCA, leaf peers.Leaf) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.SIP.TLS.Listen = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
		cfg.SIP.TLS.CertFile, cfg.SIP.TLS.KeyFile = leaf.CertFile, leaf.KeyFile
		cfg.SIP.TLS.CAFile = ca.CAFile
	}
}

// expectAudioBothWays waits until callctl relayed at least 100 RTP packets
// each way and both phones received at least 100 of them.
func expectAudioBothWays(t *testing.T, cc *callctl, id string, alice, bob *peers.Baresip) {
	t.Helper()
	var s session.Snapshot
	flowing := callctltest.Eventually(10*time.Second, func() bool {
		s = cc.snapshot(t, id)
		caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
		return caller.PacketsIn >= 100 && callee.PacketsOut >= 100 && callee.PacketsIn >= 100 && caller.PacketsOut >= 100
	})
	caller, callee := callctltest.LegStats(s, "caller"), callctltest.LegStats(s, "callee")
	if !flowing {
		t.Errorf("after 10 s callctl relayed caller→callee %d→%d and callee→caller %d→%d RTP packets; want ≥ 100 each",
			caller.PacketsIn, callee.PacketsOut, callee.PacketsIn, caller.PacketsOut)
	}
	for _, p := range []struct {
		name string
		b    *peers.Baresip
	}{{"caller", alice}, {"callee", bob}} {
		st, err := p.b.AudioStats()
		if err != nil {
			t.Fatal(err)
		}
		if st.RxPackets < 100 {
			t.Errorf("the %s's baresip received %d RTP packets; want ≥ 100", p.name, st.RxPackets)
		}
	}
}

// answerWhenRinging waits for callctl's first session to ring and makes
// callee (baresip with AnswerMode manual) answer. Answering only then keeps
// the 180 and the 200 apart: sipgo v1.7.3 hands each response to its own
// goroutine, so a 200 arriving right behind a 180 (auto-answer, one TLS
// read) may be processed first and the 180 dropped (no RINGING).
func answerWhenRinging(t *testing.T, cc *callctl, callee *peers.Baresip) string {
	t.Helper()
	id := cc.firstSession(t, 10*time.Second)
	cc.waitState(t, id, session.Ringing, 10*time.Second)
	if _, err := callee.WaitEvent(peers.EventCallIncoming, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := callee.Accept(); err != nil {
		t.Fatal(err)
	}
	return id
}

// sipTrace is the SIP messages of a baresip run with SIPTrace, one string
// each (start line and headers).
func sipTrace(b *peers.Baresip) string { return b.Log() }

// A baresip caller places its call over TLS to callctl's TLS listener, and
// callctl sends the B leg over UDP to a baresip callee: the call is answered,
// audio flows both ways, the callee hangs up and callctl's BYE reaches the
// caller on its TLS connection. What the caller received over TLS (its SIP
// trace, decrypted) shows callctl's 200 OK with a Contact for the TLS
// listener (transport=tls), and the BYE with callctl's TLS Via.
// On the old build callctl has no sip.tls and the call never reaches it.
func TestTLSBaresipCallerReachesUDPCallee(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	srv := ca.Issue(t, "callctl", 100)
	phone := ca.Issue(t, "phone", 200)
	dirA, dirB := t.TempDir(), t.TempDir()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", Dir: dirB, AnswerMode: "manual"})
	cc := startCallctl(t, func(cfg *config.Config) {
		withTLS(t, ca, srv)(cfg)
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr(), Transport: "udp"}}
	})
	tlsAddr := cc.app.SIPTLSAddr()
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", Dir: dirA, TLSCert: phone.PEMFile, TLSCAFile: ca.CAFile, SIPTrace: true})

	if err := alice.Dial("sip:3002@" + tlsAddr + ";transport=tls"); err != nil {
		t.Fatal(err)
	}
	id := answerWhenRinging(t, cc, bob)
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cc.waitState(t, id, session.InCall, 5*time.Second)
	expectAudioBothWays(t, cc, id, alice, bob)
	if err := bob.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeHungUp)

	trace := sipTrace(alice)
	for _, want := range []string{"Contact: <sip:callctl@" + tlsAddr + ";transport=tls>", "BYE sip:2001", "Via: SIP/2.0/TLS " + tlsAddr} {
		if !strings.Contains(trace, want) {
			t.Errorf("the caller's SIP trace has no %q:\n%s", want, trace)
		}
	}
	cc.expectIdle(t)
}

// A caller over UDP (baresip) reaches the trunk with transport tls
// (baresip listening on TLS): callctl dials TLS, verifies the callee's
// certificate against sip.tls.ca_file for 127.0.0.1, and the call carries
// audio both ways; the callee hangs up (its BYE reaches callctl). The
// callee's SIP trace shows callctl's INVITE with a TLS Via and a Contact
// for the TLS listener. On the old build trunk.transport tls is refused by
// validation.
func TestTLSTrunkCalleeReachedOverTLSFromUDPCaller(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	srv := ca.Issue(t, "callctl", 100)
	phone := ca.Issue(t, "phone", 200)
	dirA, dirB := t.TempDir(), t.TempDir()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", Dir: dirB, TLSCert: phone.PEMFile, TLSCAFile: ca.CAFile, SIPTrace: true, AnswerMode: "manual"})
	cc := startCallctl(t, func(cfg *config.Config) {
		withTLS(t, ca, srv)(cfg)
		cfg.Trunk.Address, cfg.Trunk.Transport = bob.TLSAddr(), "tls"
	})
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001", Dir: dirA})
	if err := alice.Dial("sip:3002@" + cc.addr()); err != nil {
		t.Fatal(err)
	}
	id := answerWhenRinging(t, cc, bob)
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cc.waitState(t, id, session.InCall, 5*time.Second)
	expectAudioBothWays(t, cc, id, alice, bob)
	if err := bob.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CalleeHungUp)

	trace := sipTrace(bob)
	tlsAddr := cc.app.SIPTLSAddr()
	for _, want := range []string{"INVITE sip:3002@" + bob.TLSAddr(), "Via: SIP/2.0/TLS " + tlsAddr, "<sip:callctl@" + tlsAddr + ";transport=tls>"} {
		if !strings.Contains(trace, want) {
			t.Errorf("the callee's SIP trace has no %q:\n%s", want, trace)
		}
	}
	cc.expectIdle(t)
}

// A sips: call (RFC 3261 26.2.2: TLS on every hop) from a caller over TLS
// goes to the callee (baresip on TLS) on a sips: Request-URI over TLS, and
// both dialogs get callctl's sips: Contact. A sips: call to a number whose
// route is UDP is refused (480) instead of being carried in the clear, and
// a sips: INVITE over UDP gets 416. The caller is a minimal SIP client in
// the test (tlsSIP): baresip 1.0 turns a dialled sips:X into sip:sips:X.
// On the old build callctl has no TLS listener.
func TestTLSSIPSCallIsSecureOnBothLegsOrRefused(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	srv := ca.Issue(t, "callctl", 100)
	phone := ca.Issue(t, "phone", 200)
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", TLSCert: phone.PEMFile, TLSCAFile: ca.CAFile, SIPTrace: true, AnswerMode: "manual"})
	cc := startCallctl(t, func(cfg *config.Config) {
		withTLS(t, ca, srv)(cfg)
		cfg.Routes = []config.Route{
			{Match: `^3\d+$`, Target: "sip:{number}@" + bob.TLSAddr(), Transport: "tls"},
			{Match: `^4\d+$`, Target: "sip:{number}@" + bob.SIPAddr(), Transport: "udp"},
		}
	})
	tlsAddr := cc.app.SIPTLSAddr()
	alice := dialTLSSIP(t, tlsAddr, ca.CAFile)

	uri := "sips:3002@" + tlsAddr
	alice.invite(t, uri, "sips-call-1", peers.FreePortPair(t))
	id := answerWhenRinging(t, cc, bob)
	res := alice.final(t, 10*time.Second)
	if res.status() != 200 {
		t.Fatalf("sips: INVITE answered %q; want 200", res.start)
	}
	if c := res.header("Contact"); c != "<sips:callctl@"+tlsAddr+">" {
		t.Errorf("callctl's 200 OK has Contact %q; want <sips:callctl@%s>", c, tlsAddr)
	}
	cc.waitState(t, id, session.InCall, 5*time.Second)
	if _, err := bob.WaitEvent(peers.EventCallEstablished, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	alice.ack(t, uri, "sips-call-1", res, true)
	if _, err := bob.WaitEvent(peers.EventCallClosed, 5*time.Second); err != nil {
		t.Error(err)
	}
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if trace := sipTrace(bob); !strings.Contains(trace, "INVITE sips:3002@"+bob.TLSAddr()) ||
		!strings.Contains(trace, "<sips:callctl@"+tlsAddr+">") {
		t.Errorf("the callee's SIP trace has no INVITE to sips:3002@%s with callctl's Contact <sips:callctl@%s>:\n%s", bob.TLSAddr(), tlsAddr, trace)
	}

	// sips: to a number routed over UDP: refused, not sent in the clear.
	uri = "sips:4002@" + tlsAddr
	alice.invite(t, uri, "sips-call-2", peers.FreePortPair(t))
	if res := alice.final(t, 10*time.Second); res.status() != 480 {
		t.Errorf("sips: INVITE to a UDP route answered %q; want 480", res.start)
	} else {
		alice.ack(t, uri, "sips-call-2", res, false)
	}
	second := cc.WaitEvent(t, 5*time.Second, "a second session", func(e session.Event) bool { return e.SessionID != id }).SessionID
	cc.WaitEnded(t, second, 5*time.Second)
	if s := cc.snapshot(t, second); !strings.Contains(s.EndReason, "sips") {
		t.Errorf("second session ended %s (%q); want a reason naming sips", s.State, s.EndReason)
	}
	for _, e := range bob.Events() {
		if e.Type == peers.EventCallIncoming && strings.Contains(e.Param, "4002") {
			t.Errorf("the sips: call to a UDP route reached the callee: %+v", e)
		}
	}

	// A sips: INVITE over UDP: 416.
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario: scenarioVariant(t, "uac_expect_503.xml", "INVITE sip:", "INVITE sips:", "ACK sip:", "ACK sips:",
			`<recv response="503"/>`, `<recv response="416"/>`),
		RemoteAddr: cc.addr(),
		Service:    "3002",
	})
	uac.ExpectPass(t, 10*time.Second)
	cc.expectIdle(t)
}

// A route's callee presents a certificate callctl does not trust (signed by
// another CA): the TLS handshake fails, the caller (SIPp over UDP) gets 503
// at once, the session ends with the reason, the failure is logged and
// counted, and the callee never sees an INVITE. On the old build
// routes[].transport tls is refused by validation.
func TestTLSUntrustedCalleeCertificateFailsTheCallWith503(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	other := peers.NewTestCA(t, "someone-else")
	srv := ca.Issue(t, "callctl", 100)
	phone := other.Issue(t, "phone", 300)
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", TLSCert: phone.PEMFile, TLSCAFile: other.CAFile})
	cc := startCallctl(t, func(cfg *config.Config) {
		withTLS(t, ca, srv)(cfg)
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.TLSAddr(), Transport: "tls"}}
	})
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_503.xml"),
		RemoteAddr: cc.addr(),
		Service:    "3002",
	})
	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 10*time.Second)
	cc.WaitEnded(t, id, 5*time.Second)
	if s := cc.snapshot(t, id); !strings.Contains(strings.ToLower(s.EndReason), "tls") {
		t.Errorf("session ended %s (%q); want a reason naming the TLS failure", s.State, s.EndReason)
	}
	cc.expectLog(t, "about the failed TLS handshake", func(line string) bool {
		return strings.Contains(line, "message not sent") && strings.Contains(line, "reason:connect") && strings.Contains(line, "certificate")
	})
	if n := cc.app.SIPSendFailures()["connect"]; n == 0 {
		t.Errorf("SIP send failures %v; want the failed handshake counted as connect", cc.app.SIPSendFailures())
	}
	for _, e := range bob.Events() {
		if e.Type == peers.EventCallIncoming {
			t.Errorf("the untrusted callee got a call: %+v", e)
		}
	}
	cc.expectIdle(t)
}

// servedSerial is the serial number of the certificate callctl's TLS
// listener presents to a new handshake.
func servedSerial(t *testing.T, addr, caFile string) int64 {
	t.Helper()
	c := dialTLSSIP(t, addr, caFile)
	defer c.conn.Close()
	return c.conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// copyFile overwrites dst with src's content.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Reloading the certificate (what SIGHUP does, App.Reload) while a call
// over TLS is up: a new handshake sees the new certificate's serial, the
// call's connection and dialog are untouched (its BYE, sent on the old
// connection after the reload, is answered and ends the call normally). A
// certificate file that cannot be used on the next reload keeps the new
// certificate in service and is logged. Plaintext SIP and garbage on the
// TLS port are closed without harm: a TLS client is still served after
// them. On the old build there is no TLS listener to reload.
func TestTLSCertificateReloadKeepsLiveCallsAndSurvivesGarbage(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	first := ca.Issue(t, "callctl", 100)
	second := ca.Issue(t, "callctl-renewed", 101)
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", AnswerMode: "manual"})
	// callctl reads copies, so the test can replace them under it.
	live := peers.Leaf{CertFile: filepath.Join(t.TempDir(), "live.crt"), KeyFile: filepath.Join(t.TempDir(), "live.key")}
	copyFile(t, first.CertFile, live.CertFile)
	copyFile(t, first.KeyFile, live.KeyFile)
	cc := startCallctl(t, func(cfg *config.Config) {
		withTLS(t, ca, live)(cfg)
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + bob.SIPAddr(), Transport: "udp"}}
	})
	tlsAddr := cc.app.SIPTLSAddr()
	if got := servedSerial(t, tlsAddr, ca.CAFile); got != 100 {
		t.Fatalf("callctl presents certificate serial %d; want 100", got)
	}

	// A call over TLS, up across the reload.
	alice := dialTLSSIP(t, tlsAddr, ca.CAFile)
	uri := "sip:3002@" + tlsAddr + ";transport=tls"
	alice.invite(t, uri, "reload-call", peers.FreePortPair(t))
	id := answerWhenRinging(t, cc, bob)
	res := alice.final(t, 10*time.Second)
	if res.status() != 200 {
		t.Fatalf("INVITE over TLS answered %q; want 200", res.start)
	}
	cc.waitState(t, id, session.InCall, 5*time.Second)

	copyFile(t, second.CertFile, live.CertFile)
	copyFile(t, second.KeyFile, live.KeyFile)
	if _, err := cc.app.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedSerial(t, tlsAddr, ca.CAFile); got != 101 {
		t.Errorf("after the reload a new handshake sees serial %d; want 101", got)
	}
	if got := alice.conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 100 {
		t.Errorf("the live call's connection now has serial %d; want it untouched (100)", got)
	}
	if s := cc.snapshot(t, id); s.State != session.InCall {
		t.Errorf("the live call is %s after the reload; want %s", s.State, session.InCall)
	}

	// A broken file: the reload fails, the renewed certificate stays.
	if err := os.WriteFile(live.CertFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.app.Reload(); err == nil {
		t.Error("Reload of a broken certificate file succeeded; want an error")
	}
	cc.expectLog(t, "saying the certificate was not reloaded", func(line string) bool {
		return strings.Contains(line, "not reloaded") && strings.Contains(line, "previous one stays")
	})
	if got := servedSerial(t, tlsAddr, ca.CAFile); got != 101 {
		t.Errorf("after a failed reload a new handshake sees serial %d; want 101 still", got)
	}

	// Plaintext SIP, then garbage, on the TLS port: each connection is
	// closed; nothing else changes.
	for _, junk := range []string{
		"OPTIONS sip:x@" + tlsAddr + " SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
		"\x16\x03\x01\x00\x05garbage-after-a-record-header" + strings.Repeat("\x00\xff", 500),
	} {
		c, err := net.DialTimeout("tcp", tlsAddr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(junk))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if strings.Contains(string(buf[:n]), "SIP/2.0") {
				t.Errorf("callctl answered SIP in the clear on its TLS port: %q", buf[:n])
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("callctl kept a connection open that sent %q", junk[:20])
				}
				break
			}
		}
		c.Close()
	}

	// The live call still ends normally, on its old connection.
	alice.ack(t, uri, "reload-call", res, true)
	cc.WaitEnded(t, id, 5*time.Second)
	cc.ExpectWalk(t, id, session.Setup, session.Ringing, session.InCall, session.CallerHungUp)
	if got := servedSerial(t, tlsAddr, ca.CAFile); got != 101 {
		t.Errorf("a TLS client after the junk sees serial %d; want 101", got)
	}
	cc.expectIdle(t)
}

// A route's callee that accepts the TCP connection and never answers the
// TLS handshake (a stuck or wrong service) fails the call with 503 once
// the connection setup times out (10 s), not a call ringing forever; the
// session ends with the reason. On the old build routes[].transport tls
// is refused by validation (and sipgo's handshake had no time limit).
func TestTLSCalleeThatNeverHandshakesFailsTheCallWith503(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	srv := ca.Issue(t, "callctl", 100)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // say nothing, close nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	cc := startCallctl(t, func(cfg *config.Config) {
		withTLS(t, ca, srv)(cfg)
		cfg.Calls.RingTimeout = 60 * time.Second
		cfg.Routes = []config.Route{{Match: `^3\d+$`, Target: "sip:{number}@" + ln.Addr().String(), Transport: "tls"}}
	})
	start := time.Now()
	uac := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   sipp.Scenario(t, "uac_expect_503.xml"),
		RemoteAddr: cc.addr(),
		Service:    "3002",
		Timeout:    30 * time.Second,
	})
	id := cc.firstSession(t, 5*time.Second)
	uac.ExpectPass(t, 30*time.Second)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the caller got its 503 after %s; want it once the 10 s connection setup limit passed", d.Round(time.Second))
	}
	cc.WaitEnded(t, id, 5*time.Second)
	if s := cc.snapshot(t, id); !strings.Contains(strings.ToLower(s.EndReason), "tls") {
		t.Errorf("session ended %s (%q); want a reason naming the TLS handshake", s.State, s.EndReason)
	}
	cc.expectIdle(t)
}

// sip.allow applies to TLS callers as to UDP and TCP ones: an OPTIONS over
// TLS from a source outside it gets no answer and its connection is
// closed, while an allowed source's OPTIONS over TLS gets 200. On the old
// build there is no TLS listener.
func TestTLSCallerOutsideAllowListIsRefused(t *testing.T) {
	t.Parallel()
	ca := peers.NewTestCA(t, "callctl-test")
	srv := ca.Issue(t, "callctl", 100)
	for _, tc := range []struct {
		name    string
		allow   string
		allowed bool
	}{{"allowed", "127.0.0.0/8", true}, {"refused", "127.0.0.2/32", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cc := startCallctl(t, func(cfg *config.Config) {
				withTLS(t, ca, srv)(cfg)
				cfg.SIP.Allow = []string{tc.allow}
			})
			c := dialTLSSIP(t, cc.app.SIPTLSAddr(), ca.CAFile)
			c.send(t, fmt.Sprintf(`OPTIONS sip:callctl@%s;transport=tls SIP/2.0
				Via: SIP/2.0/TLS %s;branch=z9hG4bK-opt-1;rport
				From: <sip:probe@%s>;tag=p1
				To: <sip:callctl@%s>
				Call-ID: tls-options-%s
				CSeq: 1 OPTIONS
				Max-Forwards: 70`, cc.app.SIPTLSAddr(), c.local, c.local, cc.app.SIPTLSAddr(), tc.name), "")
			_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			got, err := c.r.ReadString('\n')
			switch {
			case tc.allowed && !strings.HasPrefix(got, "SIP/2.0 200"):
				t.Errorf("OPTIONS over TLS from an allowed source: got %q (%v); want 200", got, err)
			case !tc.allowed && err == nil:
				t.Errorf("OPTIONS over TLS from a source outside sip.allow was answered %q; want no answer", got)
			case !tc.allowed:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("the refused source's TLS connection was left open; want it closed")
				}
			}
		})
	}
}
