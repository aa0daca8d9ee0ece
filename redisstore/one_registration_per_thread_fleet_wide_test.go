package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// Concurrent Resolves of one thread on many replicas (stores with their
// own clients) register exactly once; everyone gets that task.
func TestFleetSingleFlight(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	const replicas = 8
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = newStore(t, addr, Options{Prefix: prefix, PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond})
	}
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-1"}
	release := make(chan struct{})
	var calls atomic.Int32
	register := func(ctx context.Context) (string, error) {
		n := calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return fmt.Sprintf("task-%d", n), nil
	}
	ids := make([]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { ids[i], errs[i] = s.Resolve(context.Background(), key, register) })
	}
	waitUntil(t, 5*time.Second, "the other replicas to wait", func() bool {
		var w uint64
		for _, s := range stores {
			w += s.Stats().Waits
		}
		return w == replicas-1
	})
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d registrations across the fleet, want 1", n)
	}
	var regs, hits uint64
	for i := range stores {
		if errs[i] != nil || ids[i] != "task-1" {
			t.Fatalf("replica %d: %q, %v; want task-1", i, ids[i], errs[i])
		}
		st := stores[i].Stats()
		regs += st.Registrations
		hits += st.Hits
		if st.LocalFallbacks != 0 || st.Outages != 0 {
			t.Fatalf("replica %d: unexpected fallback: %+v", i, st)
		}
	}
	if regs != 1 || hits != replicas-1 {
		t.Fatalf("registrations %d hits %d, want 1 and %d", regs, hits, replicas-1)
	}
	// The lock is gone and the mapping is there, with a TTL.
	c := newClient(t, addr)
	k := stores[0].keysFor(key)
	if n, _ := c.Exists(context.Background(), k.lock).Result(); n != 0 {
		t.Fatal("lock left behind after publishing")
	}
	if ttl, _ := c.PTTL(context.Background(), k.mapping).Result(); ttl <= 0 || ttl > DefaultTTL {
		t.Fatalf("mapping TTL %v", ttl)
	}
}

// A lock whose holder died (it never publishes or releases) is taken over
// once it expires.
func TestTakeoverAfterLockExpiry(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{LockTimeout: time.Second, OpTimeout: 500 * time.Millisecond, PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "orphaned"}
	k := s.keysFor(key)
	c := newClient(t, addr)
	if err := c.Set(context.Background(), k.lock, "dead-holder", 400*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var calls atomic.Int32
	id, err := s.Resolve(context.Background(), key, fixedID("task-new", &calls))
	elapsed := time.Since(start)
	if err != nil || id != "task-new" || calls.Load() != 1 {
		t.Fatalf("Resolve = %q, %v after %d registrations", id, err, calls.Load())
	}
	if elapsed < 300*time.Millisecond {
		t.Fatalf("took over after %v, before the dead holder's lock expired", elapsed)
	}
	if st := s.Stats(); st.Waits != 1 || st.Takeovers != 1 || st.Registrations != 1 {
		t.Fatalf("stats %+v", st)
	}
	if v, _ := c.Get(context.Background(), k.mapping).Result(); v != "task-new" {
		t.Fatalf("mapping %q", v)
	}
}

// A holder whose registration fails releases the lock at once: a waiting
// replica registers without waiting for LockTimeout, and the failure is
// returned unchanged to the holder.
func TestFailedRegistrationReleasesLock(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	opts := Options{Prefix: prefix, PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond}
	a, b := newStore(t, addr, opts), newStore(t, addr, opts)
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-f"}
	boom := errors.New("registration rejected")
	entered, fail := make(chan struct{}), make(chan struct{})
	var aErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, aErr = a.Resolve(context.Background(), key, func(context.Context) (string, error) {
			close(entered)
			<-fail
			return "", boom
		})
	})
	<-entered
	var bID string
	var bErr error
	var calls atomic.Int32
	wg.Go(func() { bID, bErr = b.Resolve(context.Background(), key, fixedID("task-b", &calls)) })
	waitUntil(t, 5*time.Second, "replica b to wait", func() bool { return b.Stats().Waits == 1 })
	start := time.Now()
	close(fail)
	wg.Wait()
	if !errors.Is(aErr, boom) {
		t.Fatalf("holder error = %v, want the registration error", aErr)
	}
	if bErr != nil || bID != "task-b" || calls.Load() != 1 {
		t.Fatalf("waiter: %q, %v", bID, bErr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waiter needed %v after the holder failed", d)
	}
	if st := b.Stats(); st.Takeovers != 1 || st.Registrations != 1 {
		t.Fatalf("waiter stats %+v", st)
	}
	if st := a.Stats(); st.Registrations != 0 {
		t.Fatalf("holder stats %+v", st)
	}
}

// A holder whose lock expired while it registered, and whose thread was
// meanwhile registered and published by another replica, adopts the
// published task: the fleet never holds two mappings for one thread.
func TestLateHolderAdoptsPublishedTask(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	opts := Options{Prefix: prefix, PollInterval: time.Millisecond}
	a, b := newStore(t, addr, opts), newStore(t, addr, opts)
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-late"}
	k := a.keysFor(key)
	c := newClient(t, addr)
	entered, finish := make(chan struct{}), make(chan struct{})
	var aID string
	var aErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		aID, aErr = a.Resolve(context.Background(), key, func(context.Context) (string, error) {
			close(entered)
			<-finish
			return "task-a", nil
		})
	})
	<-entered
	if err := c.Del(context.Background(), k.lock).Err(); err != nil { // a's lock "expires"
		t.Fatal(err)
	}
	var calls atomic.Int32
	bID, err := b.Resolve(context.Background(), key, fixedID("task-b", &calls))
	if err != nil || bID != "task-b" {
		t.Fatalf("b: %q, %v", bID, err)
	}
	close(finish)
	wg.Wait()
	if aErr != nil || aID != "task-b" {
		t.Fatalf("late holder got %q, %v; want the published task-b", aID, aErr)
	}
	if v, _ := c.Get(context.Background(), k.mapping).Result(); v != "task-b" {
		t.Fatalf("mapping %q, want task-b", v)
	}
	if n, _ := c.Exists(context.Background(), k.lock).Result(); n != 0 {
		t.Fatal("b's lock left behind")
	}
}

// A waiter whose context ends stops at once with the context's error; that
// is not a Redis outage and nothing is registered.
func TestWaitEndsWithContext(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{PollInterval: time.Millisecond})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "busy"}
	c := newClient(t, addr)
	if err := c.Set(context.Background(), s.keysFor(key).lock, "someone", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := s.Resolve(ctx, key, fixedID("never", &calls))
		done <- err
	}()
	waitUntil(t, 5*time.Second, "the wait to start", func() bool { return s.Stats().Waits == 1 })
	cancel()
	err := <-done
	var se *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.Op != "wait" || se.Temporary() {
		t.Fatalf("err = %v, want a non-temporary *Error wrapping context.Canceled", err)
	}
	if calls.Load() != 0 {
		t.Fatal("registered although another replica holds the lock")
	}
	if st := s.Stats(); st.Outages != 0 || st.LocalFallbacks != 0 {
		t.Fatalf("a cancelled wait counted as an outage: %+v", st)
	}

	// With a deadline, a lock held too long (a dead holder's) is waited
	// for two thirds of the time; then the replica registers locally
	// rather than fail the attempt.
	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	id, err := s.Resolve(dctx, key, fixedID("local", &calls))
	if err != nil || id != "local" || calls.Load() != 1 {
		t.Fatalf("Resolve with a stuck lock = %q, %v (calls %d), want a local registration", id, err, calls.Load())
	}
	if dctx.Err() != nil {
		t.Fatal("the local registration used the whole deadline")
	}
	if st := s.Stats(); st.LocalFallbacks != 1 || st.Outages != 0 {
		t.Fatalf("stats %+v, want one local fallback and no outage", st)
	}
}

// An empty id is not published and releases the lock.
func TestEmptyTaskIDIsAnError(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-empty"}
	var calls atomic.Int32
	if _, err := s.Resolve(context.Background(), key, fixedID("", &calls)); err == nil {
		t.Fatal("empty task id accepted")
	}
	c := newClient(t, addr)
	k := s.keysFor(key)
	if n, _ := c.Exists(context.Background(), k.mapping, k.lock).Result(); n != 0 {
		t.Fatalf("%d keys left after an empty id", n)
	}
}
