package identitytest

import (
	"net/http"
	"testing"
)

// MaxRegistrations bounds runtimes plus tasks: a registration past it is
// refused with 429 "capacity" and nothing is stored.
func TestMaxRegistrations(t *testing.T) {
	s, clock := newTestServer(t, Options{MaxRegistrations: 3})
	c := newClient(t)
	k := addRuntime(t, s, "rt-cap", 1) // 1 of 3
	newTask(t, c, s, k, "rt-cap", "thread-1", clock.Now())
	newTask(t, c, s, k, "rt-cap", "", clock.Now()) // 3 of 3
	r := registerTask(t, c, s, k, "rt-cap", "thread-2", clock.Now())
	if r.status != http.StatusTooManyRequests || errorReason(t, r) != "capacity" {
		t.Fatalf("task registration past the cap: %d %s", r.status, r.body)
	}
	if n := len(s.Tasks()); n != 2 {
		t.Fatalf("tasks stored = %d, want 2", n)
	}
	if got := s.Stats().RejectionsByReason["capacity"]; got != 1 {
		t.Fatalf("capacity rejections = %d", got)
	}
}
