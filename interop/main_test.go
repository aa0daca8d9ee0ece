package interop_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind. No
// goroutine is ignored: every test closes its servers, its WebSocket
// connections and the idle connections of its base transport (the only
// goroutines the SDKs leave are net/http's, on those idle connections).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
