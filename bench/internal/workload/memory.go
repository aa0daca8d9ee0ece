package workload

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// MemoryResult is the outcome of [Memory].
type MemoryResult struct {
	// Keys is the number of thread keys sent one first request each.
	Keys int
	// Cached is the transport's CachedThreads afterwards.
	Cached int
	// Registrations counts the stub's registration calls.
	Registrations int64
	// HeapDelta is the live heap after the requests minus before, both
	// measured after a full GC.
	HeapDelta int64
}

// PerThread is HeapDelta / Keys: the bytes one cached thread costs.
func (r MemoryResult) PerThread() float64 { return float64(r.HeapDelta) / float64(r.Keys) }

// Memory sends one first request for each of keys distinct thread keys
// through one transport whose thread cache holds them all (Capacity =
// keys, at least 100,000 as configured for the report), on workers
// goroutines, and measures the live heap it retains per thread. The thread
// key strings are made inside the measured region, since a cached thread
// keeps its key; everything else a request allocates is garbage by the
// time the heap is read. Each thread holds its task and its last signed
// assertion, as in production.
func Memory(keys, workers int) (MemoryResult, error) {
	res := MemoryResult{Keys: keys}
	reg := &Registrar{}
	rec := NewRecord()
	rt, err := transport.New(NewNopBase(), transport.Config{
		Credentials:        &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec},
		RegistrationClient: reg.Client(),
		ThreadCache:        resolver.CacheOptions{Capacity: max(keys, 100_000)},
	})
	if err != nil {
		return res, err
	}
	before := liveHeap()

	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(keys) {
					return
				}
				thread := "thread-" + strconv.FormatInt(1_000_000_000+i, 10)
				req := NewRequest(transport.WithThread(context.Background(), thread), ResourceURL)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return res, fmt.Errorf("memory workload: %w", firstErr)
	}
	after := liveHeap()
	res.HeapDelta = int64(after) - int64(before)
	res.Cached = rt.Stats().CachedThreads
	res.Registrations = reg.Calls()
	runtime.KeepAlive(rt)
	return res, nil
}

// liveHeap returns the bytes of live heap objects after two full
// collections (the second catches objects freed by finalizers of the first).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
