package peers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrTimeout is returned by the Wait methods when the peer is still running
// when the timeout expires.
var ErrTimeout = errors.New("peers: timed out waiting for the process to exit")

// sigTerm asks a peer to exit; it gets a grace period before SIGKILL.
const sigTerm = syscall.SIGTERM

// logTail is how much of each log a failed test prints.
const logTail = 24 << 10

// process is one peer process: started with stdin from /dev/null and its
// output in files, waited for by a goroutine that ends when it exits, and
// stopped by PID in the test's cleanup.
type process struct {
	t       testing.TB
	name    string
	cmd     *exec.Cmd
	dir     string
	logs    []string // files to print when the test fails, stdout and stderr first
	done    chan struct{}
	state   *os.ProcessState // set before done is closed
	waitErr error
}

// requireBinary fails the test (or skips it under -short) when a peer binary is
// not installed.
func requireBinary(t testing.TB, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("peers: %s not found in PATH; install it with: apt-get install -y --no-install-recommends %s", bin, pkg)
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return p
}

// startProcess runs bin with args in dir. name prefixes its log files.
// extraLogs are printed too when the test fails (they may not exist yet).
func startProcess(t testing.TB, name, dir, bin string, args []string, extraLogs ...string) *process {
	t.Helper()
	stdout, err := os.Create(filepath.Join(dir, name+".stdout"))
	if err != nil {
		t.Fatalf("peers: %v", err)
	}
	stderr, err := os.Create(filepath.Join(dir, name+".stderr"))
	if err != nil {
		stdout.Close()
		t.Fatalf("peers: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// Own process group, so a Ctrl-C on `go test` does not reach the peer
	// before the cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		t.Fatalf("peers: start %s: %v", name, err)
	}
	// The child holds its own copies of the descriptors.
	stdout.Close()
	stderr.Close()

	p := &process{
		t:    t,
		name: name,
		cmd:  cmd,
		dir:  dir,
		logs: append([]string{stdout.Name(), stderr.Name()}, extraLogs...),
		done: make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Logf("peers: started %s (pid %d) in %s: %s %s", name, cmd.Process.Pid, dir, bin, strings.Join(args, " "))
	t.Cleanup(func() {
		p.stop(sigTerm, 3*time.Second)
		if t.Failed() {
			p.printLogs()
		}
	})
	return p
}

// PID is the process id.
func (p *process) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to exit and returns its exit code
// (-1 when a signal ended it). It does not stop the process.
func (p *process) wait(timeout time.Duration) (int, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.state.ExitCode(), nil
	case <-timer.C:
		return -1, fmt.Errorf("%s (pid %d) after %v: %w", p.name, p.PID(), timeout, ErrTimeout)
	}
}

// stop sends sig to the process, waits up to grace for it to exit, then kills
// it and waits for that.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	if _, err := p.wait(grace); err == nil {
		return
	}
	p.t.Logf("peers: %s (pid %d) ignored %v for %v; killing it", p.name, p.PID(), sig, grace)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// printLogs writes the tail of each log file to the test log.
func (p *process) printLogs() {
	status := "still running"
	if p.exited() {
		status = p.state.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "peers: %s (pid %d) %s; command: %s\n", p.name, p.PID(), status, strings.Join(p.cmd.Args, " "))
	for _, f := range p.logs {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		cut := ""
		if len(data) > logTail {
			data = data[len(data)-logTail:]
			cut = " (last part)"
		}
		fmt.Fprintf(&b, "----- %s%s -----\n%s\n", f, cut, data)
	}
	p.t.Log(b.String())
}

// readLog returns the contents of a log file, or "" when it does not exist.
func readLog(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(data)
}
