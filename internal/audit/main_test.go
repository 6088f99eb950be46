package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind, such as
// the connection opener of a Store that was never closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openTemp opens a Store in a fresh directory and closes it when the test
// ends.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// at is a fixed instant plus d, in a non-UTC zone with nanoseconds, so
// round trips prove both the zone conversion and the precision.
func at(d time.Duration) time.Time {
	zone := time.FixedZone("UTC+2", 2*60*60)
	return time.Date(2025, 3, 14, 15, 9, 26, 535897932, zone).Add(d)
}

func ctx(t testing.TB) context.Context {
	return t.Context()
}
