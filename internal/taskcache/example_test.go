package taskcache_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
)

// One registration per key: the second Get is served from the cache.
func ExampleCache() {
	var calls atomic.Int32
	register := func(ctx context.Context, key string) (string, error) {
		calls.Add(1)
		return "task-for-" + key, nil // a real RegisterFunc calls the task registration endpoint
	}
	cache, err := taskcache.New(register, taskcache.CacheOptions{Capacity: 1000})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	t1, _ := cache.Get(ctx, "thread-42")
	t2, _ := cache.Get(ctx, "thread-42")
	fmt.Println(t1.ID(), t1 == t2, calls.Load(), cache.Len())
	// Output: task-for-thread-42 true 1 1
}

// The 401 recipe: invalidate the task the server rejected, then Get again.
// A stale Invalidate (the task was already replaced) is a no-op.
func ExampleCache_Invalidate() {
	var n atomic.Int32
	register := func(ctx context.Context, key string) (string, error) {
		return fmt.Sprintf("task-%d", n.Add(1)), nil
	}
	cache, _ := taskcache.New(register, taskcache.CacheOptions{})
	ctx := context.Background()

	rejected, _ := cache.Get(ctx, "thread-1")
	fmt.Println(cache.Invalidate(rejected)) // the first 401 removes it
	fresh, _ := cache.Get(ctx, "thread-1")
	fmt.Println(cache.Invalidate(rejected)) // a late 401 for the old task changes nothing
	current, _ := cache.Get(ctx, "thread-1")
	fmt.Println(rejected.ID(), fresh.ID(), current == fresh)
	// Output:
	// true
	// false
	// task-1 task-2 true
}

// A failed registration is shared by its waiters and puts the key into
// backoff; Gets fail fast with a taskcache.BackoffError until the deadline.
func ExampleBackoffError() {
	now := time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)
	unavailable := &identity.RegistrationError{Op: identity.OpTaskRegistration, StatusCode: 503} // temporary
	register := func(ctx context.Context, key string) (string, error) { return "", unavailable }
	cache, _ := taskcache.New(register, taskcache.CacheOptions{
		Now:           func() time.Time { return now },
		BackoffJitter: -1, // exact waits, for the example
	})
	ctx := context.Background()

	_, err := cache.Get(ctx, "thread-1")
	fmt.Println(err)
	_, err = cache.Get(ctx, "thread-1")
	var backoff *taskcache.BackoffError
	if errors.As(err, &backoff) {
		fmt.Println(backoff.Until.Sub(now), backoff.Temporary(), errors.Is(err, unavailable))
	}
	fmt.Println(cache.Stats().Failures, cache.Stats().BackoffRejections)
	// Output:
	// resolver: registering task for key "thread-1": identity: agent task registration failed with status 503
	// 1s true true
	// 1 1
}
