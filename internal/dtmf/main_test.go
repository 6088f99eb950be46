package dtmf

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind, such as a
// Send that did not return.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
