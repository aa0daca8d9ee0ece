package workload

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// CPUMetric is the unit of the extra metric every per-request benchmark
// reports: process CPU time (all threads, GC included) per request. Unlike
// ns/op it does not count time the process spent descheduled, so it stays
// comparable between cases on a machine shared with other work; on an idle
// machine it equals ns/op for serial runs and ns/op × busy threads for
// parallel ones.
const CPUMetric = "cpu-ns/op"

// reportCPU reports the process CPU time used since start per b.N requests.
func reportCPU(b *testing.B, start time.Duration) {
	if end := processCPU(); start > 0 && end > start && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), CPUMetric)
	}
}

// Serial is the per-request benchmark on one goroutine: b.N round trips of
// one prebuilt request through t.
func Serial(b *testing.B, t *Target) {
	req := NewRequest(t.Ctx, ResourceURL)
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		resp, err := t.RT.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	reportCPU(b, cpu)
}

// Parallel is the per-request benchmark under testing.B.RunParallel:
// GOMAXPROCS goroutines, each with its own request, share t. Its ns/op is
// wall time per request across all goroutines, so a read path without
// contention halves it from -cpu 1 to -cpu 2.
func Parallel(b *testing.B, t *Target) {
	b.ReportAllocs()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	b.RunParallel(func(pb *testing.PB) {
		req := NewRequest(t.Ctx, ResourceURL)
		for pb.Next() {
			resp, err := t.RT.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// Concurrent returns a benchmark that splits b.N round trips over exactly
// goroutines goroutines (independent of GOMAXPROCS, unlike RunParallel), for
// the overhead-versus-concurrency sweep. Its ns/op is wall time per request.
func Concurrent(goroutines int) func(b *testing.B, t *Target) {
	return func(b *testing.B, t *Target) {
		reqs := make([]*http.Request, goroutines)
		for i := range reqs {
			reqs[i] = NewRequest(t.Ctx, ResourceURL)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := processCPU()
		defer func() { reportCPU(b, cpu) }()
		var wg sync.WaitGroup
		for i, req := range reqs {
			n := b.N / goroutines
			if i < b.N%goroutines {
				n++
			}
			wg.Go(func() {
				for range n {
					resp, err := t.RT.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// SweepLevels are the goroutine counts of the concurrency sweep.
var SweepLevels = []int{1, 2, 4, 8, 16, 32, 64}
