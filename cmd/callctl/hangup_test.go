package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callctl/callctl/test/peers"
)

// SIGHUP to `callctl serve` reloads sip.tls.cert_file and key_file: a new
// TLS handshake then sees the new certificate's serial. A SIGHUP while the
// file is broken keeps the certificate in use and logs why, and callctl
// keeps running until SIGTERM (exit 0). On the old build SIGHUP kills the
// process (no handler) and sip.tls does not exist.
func TestServeReloadsTLSCertificateOnSIGHUP(t *testing.T) {
	ca := peers.NewTestCA(t, "callctl-test")
	first, second := ca.Issue(t, "callctl", 100), ca.Issue(t, "callctl-renewed", 101)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "sip.crt"), filepath.Join(dir, "sip.key")
	copyTo := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyTo(first.CertFile, certFile)
	copyTo(first.KeyFile, keyFile)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))

	bin := filepath.Join(t.TempDir(), "callctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	lo, hi := peers.FreePortRange(t, 10)
	cmd.Env = append(cmd.Env,
		fmt.Sprintf("CALLCTL_SIP_LISTEN=127.0.0.1:%d", peers.FreeUDPPort(t)),
		fmt.Sprintf("CALLCTL_API_LISTEN=127.0.0.1:%d", peers.FreeUDPPort(t)),
		fmt.Sprintf("CALLCTL_MEDIA_RTP_PORTS=%d-%d", lo, hi),
		"CALLCTL_AUDIT_PATH="+filepath.Join(dir, "audit.db"),
		"CALLCTL_ADMIN_TOKEN=hangup-test-token",
		"CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=1s",
		"CALLCTL_SIP_TLS_LISTEN="+tlsAddr,
		"CALLCTL_SIP_TLS_CERT_FILE="+certFile,
		"CALLCTL_SIP_TLS_KEY_FILE="+keyFile,
	)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("callctl output:\n%s", logs.String())
		}
	})

	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// serial is what a new handshake sees (0: no handshake yet).
	serial := func() int64 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			return 0
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	waitSerial := func(want int64, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := serial(); got != want; got = serial() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: a TLS handshake sees serial %d; want %d", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSerial(100, "at start")

	copyTo(second.CertFile, certFile)
	copyTo(second.KeyFile, keyFile)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(101, "after SIGHUP")

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "not reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no log line saying the broken certificate was not reloaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := serial(); got != 101 {
		t.Errorf("after a SIGHUP with a broken key a handshake sees serial %d; want 101 still", got)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("callctl exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("callctl did not stop within 15 s of SIGTERM")
	}
}
