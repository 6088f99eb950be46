package main

import (
	"bytes"
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

// TestRunCommandStartsWithoutConfigAndAnswersOptions is the README's run
// command on a fresh machine: the binary with no file, no flags and no
// CALLCTL_* variables listens on its default SIP address, a real SIPp's
// OPTIONS gets 200, and SIGTERM stops it cleanly.
func TestRunCommandStartsWithoutConfigAndAnswersOptions(t *testing.T) {
	const defaultSIP = "127.0.0.1:5070"
	if c, err := net.ListenPacket("udp", defaultSIP); err != nil {
		t.Fatalf("default SIP address %s is taken on this machine: %v", defaultSIP, err)
	} else {
		c.Close()
	}
	bin := filepath.Join(t.TempDir(), "callctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // no callctl.yaml anywhere near
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
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

	// Wait until it listens (the UDP port can no longer be bound).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.ListenPacket("udp", defaultSIP)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("callctl did not bind its default SIP address within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	sipp := peers.StartSIPp(t, peers.SIPpOptions{
		Scenario:   filepath.Join("..", "..", "test", "sipp", "uac_options.xml"),
		RemoteAddr: defaultSIP,
		Timeout:    10 * time.Second,
	})
	sipp.ExpectPass(t, 15*time.Second)

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
