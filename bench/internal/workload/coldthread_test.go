package workload_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// TestColdThread runs the cold-thread workload with a few keys: every key
// of each path costs exactly one registration at the server, every Redis
// path registration went through the store (none fell back to local), and
// the ratio is a real measurement.
func TestColdThread(t *testing.T) {
	if os.Getenv(workload.RedisAddrEnv) == "" {
		if _, err := exec.LookPath("redis-server"); err != nil {
			t.Skipf("no Redis: redis-server is not on PATH and %s is unset", workload.RedisAddrEnv)
		}
	}
	const keys = 20
	res, err := workload.ColdThread(workload.ColdThreadOptions{Keys: keys, Rounds: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped {
		t.Fatalf("skipped with Redis available: %s", res.SkipReason)
	}
	if res.RedisStarted != (os.Getenv(workload.RedisAddrEnv) == "") {
		t.Errorf("RedisStarted = %v with %s=%q", res.RedisStarted, workload.RedisAddrEnv, os.Getenv(workload.RedisAddrEnv))
	}
	for name, p := range map[string]workload.ColdPathResult{"in-memory": res.InMemory, "redis": res.Redis} {
		if p.Registrations != keys || p.OnceRegistered != keys || len(p.Samples) != keys {
			t.Errorf("%s: %d registrations, %d keys registered once, %d samples; want %d each",
				name, p.Registrations, p.OnceRegistered, len(p.Samples), keys)
		}
		if p.Median <= 0 || p.Mean <= 0 {
			t.Errorf("%s: median %v, mean %v", name, p.Median, p.Mean)
		}
	}
	// The warm-up key is the one more.
	if s := res.Store; s.Registrations != keys+1 || s.Hits != 0 || s.LocalFallbacks != 0 || s.Errors != 0 {
		t.Errorf("store counters %+v, want %d registrations and no hit, fallback or error", s, keys+1)
	}
	if r := res.Ratio(); !(r > 0) {
		t.Errorf("ratio %v, want > 0", r)
	}
}

// TestColdThreadSkipsWithoutRedis checks that the workload reports a skip,
// not a failure, when there is no Redis to use.
func TestColdThreadSkipsWithoutRedis(t *testing.T) {
	t.Setenv(workload.RedisAddrEnv, "")
	t.Setenv("PATH", t.TempDir())
	res, err := workload.ColdThread(workload.ColdThreadOptions{Keys: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Skipped || res.SkipReason == "" || res.Ratio() != 0 {
		t.Errorf("Skipped %v, reason %q, ratio %v; want a skip with a reason", res.Skipped, res.SkipReason, res.Ratio())
	}
}
