package main

import (
	"context"
	"os"
	"strings"
)

// Example prints the test-vector AgentAssertion header (docs/protocol.md)
// from a record on stdin;
// the fraction of --at is truncated to the whole second that is signed.
func Example() {
	record := `{"agent_runtime_id":"agent-123","agent_private_key":"MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="}`
	run(context.Background(),
		[]string{"assertion", "--record", "-", "--task-id", "task-123", "--at", "2026-04-23T00:00:00.9+00:00"},
		strings.NewReader(record), os.Stdout, os.Stderr)
	// Output:
	// AgentAssertion eyJhZ2VudF9ydW50aW1lX2lkIjoiYWdlbnQtMTIzIiwic2lnbmF0dXJlIjoiK0dsck9LUi9GSHh4aGttT2hnNWhqMTkrNU83aE0yTWd4TnJnVGZSZ0lYOENZbjEzQUpFU3Y1eVhrd3dVQzlqRGQ4Y3ZRUk11MWY4UHliZjYvTEJnRHc9PSIsInRhc2tfaWQiOiJ0YXNrLTEyMyIsInRpbWVzdGFtcCI6IjIwMjYtMDQtMjNUMDA6MDA6MDBaIn0
}
