package identitytest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// Server's Close must stop its listener, its handlers and every connection.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
