package backend

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a Store leaves goroutines behind after
// Close (connection pools run background ones).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
