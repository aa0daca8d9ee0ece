package redisstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// Replicas × goroutines rotating one login under the lock: never two in
// the critical section, and every swap (made under the lock from the set
// just loaded) succeeds, so no rotation is lost.
func TestCoordinatorLockIsExclusive(t *testing.T) {
	const replicas, goroutines, rounds = 4, 3, 8
	addr := redisAddr(t)
	stores := fleetOf(t, replicas, addr, Options{PollInterval: 2 * time.Millisecond, MaxPollInterval: 10 * time.Millisecond})
	login := credentials.Login{AccountID: "acct-mutex"}
	seed := testTokenSet("mutex", 0, time.Hour)
	var inside, maxInside atomic.Int32
	var generation atomic.Int32
	var wg sync.WaitGroup
	var coords []*Coordinator
	for _, s := range stores {
		c := coordinator(t, s, login, CoordinatorOptions{Initial: seed})
		coords = append(coords, c)
		for range goroutines {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for range rounds {
					release, err := c.Lock(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					n := inside.Add(1)
					if n > maxInside.Load() {
						maxInside.Store(n)
					}
					cur, err := c.Load(ctx)
					if err == nil {
						err = c.CompareAndSwap(ctx, cur, testTokenSet("mutex", int(generation.Add(1)), time.Hour))
					}
					inside.Add(-1)
					release()
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders at once", maxInside.Load())
	}
	var sum CoordinatorStats
	for _, c := range coords {
		st := c.Stats()
		sum.Locks += st.Locks
		sum.Waits += st.Waits
		sum.Swaps += st.Swaps
		sum.Conflicts += st.Conflicts
	}
	if total := uint64(replicas * goroutines * rounds); sum.Locks != total || sum.Swaps != total || sum.Conflicts != 0 {
		t.Fatalf("summed stats %+v, want %d locks and swaps, no conflict", sum, total)
	}
	t.Logf("%d rotations by %d replicas × %d goroutines; %d fleet locks waited for another holder", total(replicas, goroutines, rounds), replicas, goroutines, sum.Waits)
	if generation.Load() != replicas*goroutines*rounds {
		t.Fatalf("%d rotations", generation.Load())
	}
	if ks, err := newClient(t, addr).Keys(context.Background(), stores[0].opts.LoginPrefix+"*:lock").Result(); err != nil || len(ks) != 0 {
		t.Fatalf("locks left: %v %v", ks, err)
	}
}

// release frees the fleet lock only while this replica holds it: after
// its lock expired and another replica took it, a late release leaves the
// other's lock alone.
func TestCoordinatorLateReleaseKeepsTheNewHoldersLock(t *testing.T) {
	const lockTimeout = 300 * time.Millisecond
	addr := redisAddr(t)
	stores := fleetOf(t, 2, addr, Options{OpTimeout: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond})
	login := credentials.Login{AccountID: "acct-late"}
	a := coordinator(t, stores[0], login, CoordinatorOptions{LockTimeout: lockTimeout})
	b := coordinator(t, stores[1], login, CoordinatorOptions{LockTimeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	releaseA, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Now()
	releaseB, err := b.Lock(ctx) // waits until a's lock expires
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(took); waited < lockTimeout-50*time.Millisecond {
		t.Fatalf("b took the lock after %v, before a's expired (%v)", waited, lockTimeout)
	}
	releaseA()
	releaseA() // idempotent
	key := stores[0].loginKeysFor(login).tokensLock
	if n, err := newClient(t, addr).Exists(ctx, key).Result(); err != nil || n != 1 {
		t.Fatalf("a's late release deleted b's lock: %d %v", n, err)
	}
	releaseB()
	if n, err := newClient(t, addr).Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("b's release left the lock: %d %v", n, err)
	}
	if st := b.Stats(); st.Locks != 1 || st.Waits != 1 {
		t.Fatalf("b stats %+v", st)
	}
}

// A Lock whose context ends while another replica holds the lock returns
// a temporary error and leaves the in-process lock free.
func TestCoordinatorLockHonoursContext(t *testing.T) {
	addr := redisAddr(t)
	stores := fleetOf(t, 2, addr, Options{})
	login := credentials.Login{AccountID: "acct-ctx"}
	a := coordinator(t, stores[0], login, CoordinatorOptions{})
	b := coordinator(t, stores[1], login, CoordinatorOptions{})
	release, err := a.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = b.Lock(ctx)
	var re *Error
	if !errors.As(err, &re) || re.Op != "lock" || !transport.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past its deadline: %v", err)
	}
	// b's in-process lock is free again: a cancelled Lock did not keep it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	select {
	case b.local <- struct{}{}:
		<-b.local
	case <-ctx2.Done():
		t.Fatal("the in-process lock stayed taken")
	}
}
