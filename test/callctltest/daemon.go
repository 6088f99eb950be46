package callctltest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// BuildCallctl builds cmd/callctl (once per test binary) and returns the
// binary's path.
func BuildCallctl(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build callctl with: %v", err)
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "callctl-bin-"); buildErr != nil {
			return
		}
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(buildDir, "callctl"), "./cmd/callctl")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/callctl: %v\n%s", buildErr, buildOut)
	}
	return filepath.Join(buildDir, "callctl")
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// Daemon is the real callctl binary running as its own process.
type Daemon struct {
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
}

// StartDaemon runs `callctl serve` with args and the CALLCTL_* variables
// in env (and no others from this process), and waits until /readyz at
// apiURL answers 200. The test's cleanup stops it (SIGTERM by PID, then
// SIGKILL) if it is still running, and prints its log if the test failed.
func StartDaemon(t *testing.T, bin, apiURL string, args, env []string) *Daemon {
	t.Helper()
	d := LaunchDaemon(t, bin, args, env)
	d.WaitReady(t, apiURL, 15*time.Second)
	return d
}

// LaunchDaemon is StartDaemon without the wait: for nodes that become
// ready only together (a NATS cluster electing its leader).
func LaunchDaemon(t *testing.T, bin string, args, env []string) *Daemon {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "callctl.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				<-d.done
			}
		}
		if t.Failed() {
			t.Logf("callctl (pid %d) %v; its log:\n%s", cmd.Process.Pid, strings.Join(cmd.Args, " "), d.Output())
		}
	})
	return d
}

// WaitReady waits until /readyz at apiURL answers 200, failing the test if
// the process exits first or timeout passes.
func (d *Daemon) WaitReady(t *testing.T, apiURL string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	if !Eventually(timeout, func() bool {
		select {
		case <-d.done:
			return true
		default:
		}
		resp, err := client.Get(apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("callctl not ready at %s/readyz after %v; its log:\n%s", apiURL, timeout, d.Output())
	}
	select {
	case <-d.done:
		t.Fatalf("callctl exited at start-up (%v); its log:\n%s", d.cmd.ProcessState, d.Output())
	default:
	}
}

// Output is what the process has written so far.
func (d *Daemon) Output() string {
	data, _ := os.ReadFile(d.log)
	return string(data)
}

// PID is the process's id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Kill sends SIGKILL to the process by its PID and waits for it to die.
func (d *Daemon) Kill(t *testing.T) {
	t.Helper()
	d.Signal(t, syscall.SIGKILL, 10*time.Second)
}

// Signal sends sig to the process and waits up to wait for it to exit.
func (d *Daemon) Signal(t *testing.T, sig syscall.Signal, wait time.Duration) {
	t.Helper()
	if err := syscall.Kill(d.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("kill -%d %d: %v", sig, d.cmd.Process.Pid, err)
	}
	select {
	case <-d.done:
	case <-time.After(wait):
		t.Fatalf("callctl (pid %d) still running %v after signal %v", d.cmd.Process.Pid, wait, sig)
	}
}

// ExitCode is the process's exit code once it exited (-1 if by a signal).
func (d *Daemon) ExitCode() int {
	<-d.done
	return d.cmd.ProcessState.ExitCode()
}
