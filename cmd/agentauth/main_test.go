package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind, e.g. a
// serve that did not stop when its context ended.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
