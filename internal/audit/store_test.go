package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCreatesFileWithSchemaInWALWithFullSync(t *testing.T) {
	s, path := openTemp(t)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %v, want 0600", mode)
	}
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"user_version", fmt.Sprint(len(migrations))},
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
	} {
		var got string
		if err := s.db.QueryRowContext(ctx(t), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
	var indexes []string
	rows, err := s.db.QueryContext(ctx(t), `SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, n)
	}
	rows.Close()
	want := "calls_sort calls_start requests_client requests_session requests_time"
	if got := strings.Join(indexes, " "); got != want {
		t.Errorf("indexes = %q, want %q", got, want)
	}
}

func TestOpenHandlesPathsThatLookLikeURIs(t *testing.T) {
	// '?' and '#' would cut a plain DSN short; '%' would be decoded.
	path := filepath.Join(t.TempDir(), "a dir", "audit?x=1#frag%20.db")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.RecordRequest(ctx(t), Request{Operation: "hold", Result: ResultOK}); err != nil {
		t.Errorf("RecordRequest: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only %q", names, filepath.Base(path))
	}
}

func TestOpenErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx(t), fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		path    string
		wantIn  string
		wantErr error
	}{
		{"empty path", "", "database path is empty", ErrInvalidArgument},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "a.db"), filepath.Join(dir, "no", "such", "dir", "a.db"), os.ErrNotExist},
		{"directory", dir, dir, nil},
		{"schema from a newer callctl", newer, "newer than this callctl", nil},
		{"not a database", notDB, notDB, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("Open(%q) = %q, want it to contain %q", tc.path, err, tc.wantIn)
			}
			if tc.path != "" && !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open(%q) = %q, want it to name the path", tc.path, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Open(%q) = %v, want errors.Is %v", tc.path, err, tc.wantErr)
			}
		})
	}
}

func TestReopenAfterCloseKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Time: at(0), Client: "alice", Source: "10.0.0.7:5123", Operation: "hold",
		Args: map[string]string{"party": "1001"}, SessionID: "s1", Result: ResultOK, Status: 200}
	if req.ID, err = s.RecordRequest(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	call := Call{SessionID: "s1", Caller: "1001", Callee: "1002", Start: at(0), End: at(1e9),
		State: "closed", EndReason: "caller hung up", Operations: []string{"hold by alice ok"}}
	if err := s.RecordCall(ctx(t), call); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close checkpoints and removes the WAL: the rows must be in the main file.
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAL file after Close: %v, want it removed", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reqs, err := s.Requests(ctx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	wantReq := req
	wantReq.Time = req.Time.UTC()
	if len(reqs) != 1 || !equalRequest(reqs[0], wantReq) {
		t.Errorf("requests after reopen = %+v, want [%+v]", reqs, wantReq)
	}
	calls, err := s.Calls(ctx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	wantCall := utcCall(call)
	if len(calls) != 1 || !equalCall(calls[0], wantCall) {
		t.Errorf("calls after reopen = %+v, want [%+v]", calls, wantCall)
	}
	// A new request continues the ID sequence rather than reusing it.
	id, err := s.RecordRequest(ctx(t), Request{Operation: "unhold", Result: ResultOK})
	if err != nil {
		t.Fatal(err)
	}
	if id != req.ID+1 {
		t.Errorf("ID after reopen = %d, want %d", id, req.ID+1)
	}
}

func TestClosedStoreRefusesWithErrClosed(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	for name, call := range map[string]func() error{
		"RecordRequest": func() error {
			_, err := s.RecordRequest(ctx(t), Request{Operation: "hold", Result: ResultOK})
			return err
		},
		"RecordCall": func() error { return s.RecordCall(ctx(t), Call{SessionID: "s1"}) },
		"Requests":   func() error { _, err := s.Requests(ctx(t), Filter{}); return err },
		"Calls":      func() error { _, err := s.Calls(ctx(t), Filter{}); return err },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
