package pool_test

import (
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/usage"
)

// The pool reads every answer's used percent, so the read must not
// allocate; it finds the largest window of any family.
func TestReadingUsedPercentAllocatesNothing(t *testing.T) {
	h := http.Header{"X-Codex-Primary-Used-Percent": {"12.5"}, "x-codex-other-secondary-used-percent": {"70"},
		"Content-Type": {"application/json"}, "X-Request-Id": {"abc"}}
	if p, ok := pool.MaxUsedPercent(h); !ok || p != 70 {
		t.Fatalf("MaxUsedPercent = %v, %v", p, ok)
	}
	if n := testing.AllocsPerRun(100, func() { pool.MaxUsedPercent(h) }); n != 0 {
		t.Errorf("MaxUsedPercent allocates %v times", n)
	}
	if _, ok := pool.MaxUsedPercent(http.Header{"Content-Type": {"text/plain"}}); ok {
		t.Error("MaxUsedPercent found a percent in headers without one")
	}
}

// FuzzUsedPercentAgreesWithUsage: the pool's fast read is never below what
// package usage finds in the same headers.
func FuzzUsedPercentAgreesWithUsage(f *testing.F) {
	f.Add("x-codex-primary-used-percent", "12.5", "x-codex-primary-reset-at", "1704069000")
	f.Add("x-codex-other-primary-used-percent", "80", "x-codex-secondary-used-percent", "90")
	f.Add("x--primary-used-percent", "1e308", "x-codex-secondary-used-percent", "-0")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{k1: {v1}, k2: {v2}}
		if p, ok := usage.FromHeader(h).MaxUsedPercent(); ok {
			if q, ok2 := pool.MaxUsedPercent(h); !ok2 || q < p {
				t.Fatalf("fast read %v,%v below usage's %v", q, ok2, p)
			}
		}
	})
}
