package workload

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/transport"
)

// MemoryOptions configures [Memory].
type MemoryOptions struct {
	// Keys is the number of thread keys sent one first request each.
	Keys int
	// Workers is the number of goroutines sending them; 0 means 1.
	Workers int
	// UUIDKeys makes the thread keys 36-byte UUID strings (as a client
	// that names threads by UUID sends them) instead of 17-byte
	// "thread-NNNNNNNNNN" keys.
	UUIDKeys bool
}

// MemoryResult is the outcome of [Memory].
type MemoryResult struct {
	// Keys is the number of thread keys sent one first request each.
	Keys int
	// KeyLen is the length of each thread key in bytes.
	KeyLen int
	// Cached is the transport's CachedThreads afterwards.
	Cached int
	// Registrations counts the stub's registration calls.
	Registrations int64
	// HeapDelta is the live heap once the threads have gone idle (their
	// assertions' second has passed and the transport has served another
	// request since) minus before, both measured after a full GC.
	HeapDelta int64
	// BusyHeapDelta is the same right after the first requests, while
	// every thread's assertion may still be sent.
	BusyHeapDelta int64
}

// PerThread is HeapDelta / Keys: the bytes one idle cached thread costs.
func (r MemoryResult) PerThread() float64 { return float64(r.HeapDelta) / float64(r.Keys) }

// BusyPerThread is BusyHeapDelta / Keys: the bytes one cached thread costs
// while its assertion is current.
func (r MemoryResult) BusyPerThread() float64 { return float64(r.BusyHeapDelta) / float64(r.Keys) }

// threadKeyN returns the i-th thread key of the memory and many-threads
// workloads: a UUID-shaped 36-byte string when uuid is set, else
// "thread-" and ten digits.
func threadKeyN(i int, uuid bool) string {
	if !uuid {
		return "thread-" + strconv.FormatInt(1_000_000_000+int64(i), 10)
	}
	x := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(x>>32), uint16(x>>16), uint16(x)&0xfff, uint16(i)&0xfff, uint64(i)&0xffffffffffff)
}

// manualClock is a clock the workload moves by hand.
type manualClock struct{ ns atomic.Int64 }

func newManualClock() *manualClock {
	c := &manualClock{}
	c.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	return c
}

func (c *manualClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *manualClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Memory sends one first request for each of opts.Keys distinct thread
// keys through one transport whose thread cache holds them all (Capacity =
// keys, at least 100,000 as configured for the report), on opts.Workers
// goroutines, and measures the live heap it retains per thread: once right
// after (every assertion current), and once the threads are idle: its
// clock is moved two seconds on and one more request sent on the first
// key, as any later traffic would. The thread key strings are made inside
// the measured region, since a cached thread keeps its key; everything else
// a request allocates is garbage by the time the heap is read.
func Memory(opts MemoryOptions) (MemoryResult, error) {
	keys := opts.Keys
	res := MemoryResult{Keys: keys, KeyLen: len(threadKeyN(0, opts.UUIDKeys))}
	reg := &Registrar{}
	cred, err := AgentIdentity(NewRecord())
	if err != nil {
		return res, err
	}
	clock := newManualClock()
	rt, err := transport.New(NewNopBase(), withClock(transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    reg.Client(),
		Tuning:        transport.Tuning{MaxThreads: max(keys, 100_000)},
	}, clock.Now))
	if err != nil {
		return res, err
	}
	send := func(thread string) error {
		req := NewRequest(transport.WithThread(context.Background(), thread), ResourceURL)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	before := liveHeap()

	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range max(opts.Workers, 1) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(keys) {
					return
				}
				if err := send(threadKeyN(int(i), opts.UUIDKeys)); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return res, fmt.Errorf("memory workload: %w", firstErr)
	}
	res.BusyHeapDelta = int64(liveHeap()) - int64(before)
	clock.Advance(2 * time.Second)
	if err := send(threadKeyN(0, opts.UUIDKeys)); err != nil {
		return res, fmt.Errorf("memory workload: %w", err)
	}
	res.HeapDelta = int64(liveHeap()) - int64(before)
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
