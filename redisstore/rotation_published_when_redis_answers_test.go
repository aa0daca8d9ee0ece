package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// stalledSwap has coordinator a rotate the login s0 → s1 under the fleet
// lock while Redis is frozen (SIGSTOP, as under CLIENT PAUSE or an
// overloaded Redis): the swap fails, the rotation is pending and the hold
// ends. It returns with Redis still frozen.
func stalledSwap(t *testing.T, r *redisServer, a *Coordinator, s0, s1 *credentials.TokenSet) {
	t.Helper()
	ctx := context.Background()
	release, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := a.Load(ctx); err != nil || !sameSet(cur, s0) {
		t.Fatalf("Load before the stall: %v", err)
	}
	r.pause()
	if err := a.CompareAndSwap(ctx, s0, s1); !transport.IsTemporary(err) {
		t.Fatalf("swap while Redis is frozen: %v, want a temporary error", err)
	}
	release()
	if !a.Stats().Pending {
		t.Fatal("the rotation is not pending")
	}
}

// A rotation stored while Redis stalls reaches the fleet as soon as Redis
// answers again, with no further call on the replica that made it: until
// then, another replica refreshing would send the spent refresh token.
func TestRotationPublishedWhenRedisAnswers(t *testing.T) {
	r := startRedis(t, 0)
	sealer := newSealer(t, newKey(t))
	opts := Options{OpTimeout: 300 * time.Millisecond, LoginPrefix: uniquePrefix(t)}
	login := credentials.Login{AccountID: "acct-stall", UserID: "user-stall"}
	s0, s1 := testTokenSet("stall", 0, time.Hour), testTokenSet("stall", 1, time.Hour)
	a := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: 30 * time.Second})
	defer a.Close()
	b := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: 30 * time.Second})
	defer b.Close()
	stalledSwap(t, r, a, s0, s1)
	r.resume()

	ctx := context.Background()
	waitUntil(t, 10*time.Second, "the pending rotation to be published", func() bool { return !a.Stats().Pending })
	if got, err := b.Load(ctx); err != nil || !sameSet(got, s1) {
		t.Fatalf("another replica loads the spent set after Redis answered again: %v", err)
	}
	// The publish freed the fleet lock the stalled hold could not free:
	// another replica takes it at once instead of after LockTimeout (30 s).
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	release, err := b.Lock(lctx)
	if err != nil {
		t.Fatalf("the fleet lock stayed taken after the publish: %v", err)
	}
	release()
}

// A stall that outlasts the lock lets the lock lapse while the holder's
// rotation is unpublished. The next holder must not refresh from the set
// whose refresh token the lapsed holder spent: it takes the lock only
// after that holder published (or after a grace, for a holder that died).
func TestLapsedLockHolderPublishesBeforeTheNextHolderLoads(t *testing.T) {
	const lockTimeout = time.Second
	r := startRedis(t, 0)
	sealer := newSealer(t, newKey(t))
	opts := Options{OpTimeout: 300 * time.Millisecond, LoginPrefix: uniquePrefix(t)}
	login := credentials.Login{AccountID: "acct-lapse", UserID: "user-lapse"}
	s0, s1 := testTokenSet("lapse", 0, time.Hour), testTokenSet("lapse", 1, time.Hour)
	a := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: lockTimeout})
	defer a.Close()
	b := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: lockTimeout})
	defer b.Close()
	stalledSwap(t, r, a, s0, s1)
	time.Sleep(2 * lockTimeout) // the stall outlasts the lock
	r.resume()

	// b was waiting to refresh: it takes the lock as soon as Redis answers.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	release, err := b.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got, err := b.Load(ctx); err != nil || !sameSet(got, s1) {
		t.Fatalf("the next holder loaded the set whose refresh token the lapsed holder spent: %v", err)
	}
}
