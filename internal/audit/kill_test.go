package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The child process of TestRecordRequestSurvivesKill is this test binary
// run with these variables set.
const (
	envHelperDB = "CALLCTL_AUDIT_HELPER_DB"
	envHelperN  = "CALLCTL_AUDIT_HELPER_N"
)

// TestHelperProcess is not a test: run as a child with envHelperDB set, it
// opens the store and records requests as fast as it can, printing
// "done <id>" as each RecordRequest returns, until it is killed. It never
// closes the store, so nothing is checkpointed or flushed on the way out.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(envHelperDB)
	if path == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv(envHelperN))
	s, err := Open(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	// Keep writing past n, so the kill can land in the middle of a write.
	// The cap and deadline only matter if the parent never kills us.
	deadline := time.Now().Add(time.Minute)
	for i := 1; i <= 100*n && time.Now().Before(deadline); i++ {
		id, err := s.RecordRequest(context.Background(), helperRequest(i))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("done", id)
	}
	os.Exit(3)
}

func helperRequest(i int) Request {
	return Request{Time: at(time.Duration(i) * time.Millisecond), Client: "alice", Source: "10.0.0.7:5123",
		Operation: "hold", Args: map[string]string{"n": strconv.Itoa(i)}, SessionID: fmt.Sprintf("s%d", i),
		Result: ResultOK, Status: 200}
}

func TestRecordRequestSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const n = 50
	path := filepath.Join(t.TempDir(), "audit.db")

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelperDB+"="+path, envHelperN+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// Read until the child has answered n requests, then kill it at once:
	// everything it reported done must be in the file.
	sc := bufio.NewScanner(stdout)
	var answered []int64
	for len(answered) < n && sc.Scan() {
		line := sc.Text()
		idText, ok := strings.CutPrefix(line, "done ")
		if !ok {
			t.Fatalf("child said %q, want \"done <id>\"", line)
		}
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			t.Fatalf("child said %q: %v", line, err)
		}
		answered = append(answered, id)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	killed = true
	if len(answered) < n {
		t.Fatalf("child reported %d requests done before its output ended (%v), want %d", len(answered), sc.Err(), n)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
	// The child never closed the store, so its commits are still in the WAL,
	// not yet checkpointed into the main file: the reopen must recover them.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Errorf("WAL after kill: %v, %v; want a non-empty WAL left behind", fi, err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	var check string
	if err := s.db.QueryRowContext(ctx(t), `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", check, err)
	}
	got, err := s.Requests(ctx(t), Filter{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]Request{}
	for _, r := range got {
		stored[r.ID] = r
	}
	for i, id := range answered {
		want := helperRequest(i + 1)
		want.ID, want.Time = id, want.Time.UTC()
		r, ok := stored[id]
		if !ok {
			t.Errorf("request %d was answered before the kill but is missing after restart", id)
			continue
		}
		if !equalRequest(r, want) {
			t.Errorf("request %d after restart = %+v, want %+v", id, r, want)
		}
	}
	t.Logf("child answered %d, %d rows after restart (the rest were written after the last line read)", len(answered), len(got))
}
