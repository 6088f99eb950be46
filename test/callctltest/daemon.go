package callctltest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callctl/callctl/test/peers"
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

// Node is one callctl daemon of a test as it is run and run again: the
// binary, its SIP address and API, and its arguments and CALLCTL_*
// environment (its own data directory, RTP range, loopback allowed).
type Node struct {
	Bin  string
	SIP  string // host:port
	API  API
	Args []string
	Env  []string
}

// NewNode prepares a node on sipAddr ("" for a free loopback port) whose
// trunk is trunk and whose admin token is token; nothing runs yet.
func NewNode(t *testing.T, sipAddr, trunk, token string) *Node {
	t.Helper()
	if sipAddr == "" {
		sipAddr = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	client := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	lo, hi := peers.FreePortRange(t, 128)
	return &Node{
		Bin: BuildCallctl(t),
		SIP: sipAddr,
		API: API{URL: "http://" + apiAddr, Token: token, Client: client},
		Args: []string{
			"--sip", sipAddr, "--pbx", trunk, "--api", apiAddr,
			"--rtp-ports", fmt.Sprintf("%d-%d", lo, hi),
		},
		Env: []string{
			"CALLCTL_AUDIT_PATH=" + filepath.Join(t.TempDir(), "callctl.db"),
			"CALLCTL_ADMIN_TOKEN=" + token,
			"CALLCTL_SIP_ALLOW=127.0.0.0/8",
			"CALLCTL_MEDIA_PORT_REST=200ms",
			"CALLCTL_SHUTDOWN_DRAIN_TIMEOUT=1s",
		},
	}
}

// Start runs the node and waits until it is ready.
func (n *Node) Start(t *testing.T) *Daemon {
	t.Helper()
	return StartDaemon(t, n.Bin, n.API.URL, n.Args, n.Env)
}

// Launch runs the node without waiting (see LaunchDaemon).
func (n *Node) Launch(t *testing.T) *Daemon {
	t.Helper()
	return LaunchDaemon(t, n.Bin, n.Args, n.Env)
}
