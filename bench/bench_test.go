// Package bench_test holds the agentauth benchmarks (run them from bench/
// with go test -run '^$' -bench . -benchmem -cpu 1,2) and a smoke test of
// every workload. The workloads themselves live in internal/workload, which
// cmd/report runs too.
package bench_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// build builds c over a no-op base, failing b on error.
func build(b *testing.B, c workload.Case) *workload.Target {
	b.Helper()
	ctx, cancel := workload.HandlerContext()
	b.Cleanup(cancel)
	t, err := c.Build(ctx, workload.Env{})
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkRoundTrip is the per-request cost of each case on one goroutine
// (serial) and on GOMAXPROCS goroutines (parallel).
func BenchmarkRoundTrip(b *testing.B) {
	for _, c := range workload.Cases() {
		b.Run(c.Name+"/serial", func(b *testing.B) { workload.Serial(b, build(b, c)) })
		b.Run(c.Name+"/parallel", func(b *testing.B) { workload.Parallel(b, build(b, c)) })
	}
}

// BenchmarkConcurrency is the sweep behind the report's chart: wall time
// per request with a fixed number of goroutines.
func BenchmarkConcurrency(b *testing.B) {
	for _, g := range workload.SweepLevels {
		for _, c := range workload.Cases() {
			b.Run(fmt.Sprintf("g=%d/%s", g, c.Name), func(b *testing.B) { workload.Concurrent(g)(b, build(b, c)) })
		}
	}
}

// BenchmarkStampede reports, per stampede of 10,000 first requests on one
// thread key (2 ms registrations), its duration in units of one lone first
// request, and the registrations and signatures it cost.
func BenchmarkStampede(b *testing.B) {
	for b.Loop() {
		r, err := workload.Stampede(10_000, 2*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.Ratio(), "x-single")
		b.ReportMetric(float64(r.Registrations), "registrations")
		b.ReportMetric(float64(r.Signatures), "signatures")
	}
}

// BenchmarkMemory reports the live heap per idle cached thread at 100,000
// thread keys of 17 bytes and of 36 (UUIDs).
func BenchmarkMemory(b *testing.B) {
	for _, uuid := range []bool{false, true} {
		b.Run(map[bool]string{false: "short-keys", true: "uuid-keys"}[uuid], func(b *testing.B) {
			for b.Loop() {
				r, err := workload.Memory(workload.MemoryOptions{Keys: 100_000, Workers: 2, UUIDKeys: uuid})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.PerThread(), "B/idle-thread")
				b.ReportMetric(r.BusyPerThread(), "B/busy-thread")
			}
		})
	}
}

// BenchmarkLoopback reports requests per second on a keep-alive loopback
// server along the bare, wire and ours paths, alternately.
func BenchmarkLoopback(b *testing.B) {
	for b.Loop() {
		r, err := workload.Loopback(workload.LoopbackOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range workload.LoopbackPaths {
			b.ReportMetric(r.Paths[p].RPS, p+"-req/s")
		}
		b.ReportMetric(r.Ratio(), "ours/bare")
		b.ReportMetric(r.WireRatio(), "wire/bare")
	}
}

// BenchmarkColdThread reports the median latency of the first request of
// 1,000 new thread keys through a transport without a task store and
// through one with the Redis store, and their ratio. It skips without a
// Redis ($AGENTAUTH_REDIS_ADDR or redis-server on PATH).
func BenchmarkColdThread(b *testing.B) {
	for b.Loop() {
		r, err := workload.ColdThread(workload.ColdThreadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if r.Skipped {
			b.Skip(r.SkipReason)
		}
		b.ReportMetric(float64(r.InMemory.Median.Nanoseconds()), "memory-ns/first")
		b.ReportMetric(float64(r.Redis.Median.Nanoseconds()), "redis-ns/first")
		b.ReportMetric(r.Ratio(), "redis/memory")
	}
}

// BenchmarkManyThreads compares the cached cost of 100,000 warm thread
// keys (UUIDs) accessed uniformly at random with one hot key of the same
// transport, frozen clock.
func BenchmarkManyThreads(b *testing.B) {
	m, cancel, err := workload.NewManyThreads(100_000)
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	b.Run("random", m.Random)
	b.Run("hot", m.Hot)
}

// BenchmarkContention reports the signatures minted while 64 goroutines
// send cached requests on one thread for 5 s, against the seconds the
// clock went through (equal when no second is signed twice).
func BenchmarkContention(b *testing.B) {
	for b.Loop() {
		r, err := workload.Contention(64, 0, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Signatures), "signatures")
		b.ReportMetric(float64(r.Seconds), "seconds")
	}
}

// BenchmarkColdClient is the client side of a new thread's first request,
// without network or server: ours against the same done by hand.
func BenchmarkColdClient(b *testing.B) {
	c, err := workload.NewColdClient(10_000)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ours", c.Ours)
	b.Run("by-hand", c.ByHand)
}
