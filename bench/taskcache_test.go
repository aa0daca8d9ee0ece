package bench_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// uuidKey is a 36-byte thread key shaped like the UUIDs callers use.
func uuidKey(i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
}

// warmCache returns a task cache holding n tasks under UUID keys, and the
// keys, with the default idle TTL (so a hit reads the clock, as it does in
// the transport).
func warmCache(b *testing.B, n int) (*taskcache.Cache, []string) {
	b.Helper()
	c, err := taskcache.New(func(_ context.Context, key string) (string, error) {
		return "task-" + key, nil
	}, taskcache.CacheOptions{Capacity: n})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, n)
	ctx := context.Background()
	for i := range keys {
		keys[i] = uuidKey(i)
		if _, err := c.Get(ctx, keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	return c, keys
}

// BenchmarkTaskCacheHit is the hit path of the thread-task cache's index
// (the figure behind the choice of index in internal/taskcache/table.go):
// one hot key, and 100,000 warm keys visited in a scattered order, on
// GOMAXPROCS goroutines (run with -cpu 1,2).
func BenchmarkTaskCacheHit(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			c, keys := warmCache(b, n)
			ctx := context.Background()
			b.ResetTimer()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := c.Get(ctx, keys[i]); err != nil {
						b.Error(err)
						return
					}
					i = (i + 7919) % len(keys) // a prime: every key, in an order the CPU cannot prefetch
				}
			})
		})
	}
}

// BenchmarkTaskCacheMemory reports the heap each cached thread costs in
// the cache (task, ring slot, index), at 100,000 UUID keys.
func BenchmarkTaskCacheMemory(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = uuidKey(i)
	}
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := taskcache.New(func(_ context.Context, key string) (string, error) {
			return "task", nil
		}, taskcache.CacheOptions{Capacity: n})
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range keys {
			if _, err := c.Get(context.Background(), k); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
		runtime.KeepAlive(c)
	}
}
