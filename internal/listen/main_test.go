package listen

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: a
// listener's writer or RTCP reader, or pion's own, after its end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
