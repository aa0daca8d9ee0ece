package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// A holder cut off from Redis (its commands black-holed, while Redis runs
// on and lets its lock lapse) keeps a rotation it could not publish. The
// next replica to find the lapsed lock must grant that holder a grace: it
// waits instead of taking the lock at once, so once the holder reaches
// Redis again within the grace, the next holder loads the rotation rather
// than the set whose refresh token the lapsed holder spent.
//
// Unlike a frozen Redis (SIGSTOP), which runs the queued swap the moment
// it wakes, the black hole loses the swap: only the background publish
// within the grace brings the rotation to the fleet.
func TestLapsedLockGraceLetsItsHolderPublish(t *testing.T) {
	const lockTimeout = 3 * time.Second
	addr := redisAddr(t)
	proxy := startBlackholeProxy(t, addr)
	sealer := newSealer(t, newKey(t))
	opts := Options{OpTimeout: 300 * time.Millisecond, LoginPrefix: uniquePrefix(t)}
	login := credentials.Login{AccountID: "acct-grace", UserID: "user-grace"}
	s0, s1 := testTokenSet("grace", 0, time.Hour), testTokenSet("grace", 1, time.Hour)
	a := coordinator(t, newSealedStore(t, proxy.addr(), sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: lockTimeout})
	defer a.Close()
	b := coordinator(t, newSealedStore(t, addr, sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: lockTimeout})
	defer b.Close()
	direct := newClient(t, addr)
	exists := func(key string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := direct.Exists(ctx, key).Result()
		return err == nil && n == 1
	}

	// a rotates s0 → s1 under the fleet lock, but the swap is lost.
	ctx := context.Background()
	release, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := a.Load(ctx); err != nil || !sameSet(cur, s0) {
		t.Fatalf("Load before the black hole: %v", err)
	}
	proxy.blackhole()
	if err := a.CompareAndSwap(ctx, s0, s1); !transport.IsTemporary(err) {
		t.Fatalf("swap into the black hole: %v, want a temporary error", err)
	}
	release()
	if !a.Stats().Pending {
		t.Fatal("the rotation is not pending")
	}
	waitUntil(t, 3*lockTimeout, "a's fleet lock to lapse", func() bool { return !exists(a.keys.tokensLock) })

	// b now wants to refresh: it takes the lock and loads what it would
	// refresh from.
	type result struct {
		set *credentials.TokenSet
		err error
	}
	done := make(chan result, 1)
	bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() {
		release, err := b.Lock(bctx)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer release()
		set, err := b.Load(bctx)
		done <- result{set, err}
	}()

	// While a is still cut off, b either waits in the grace or (without
	// one) already holds the lock and has loaded s0.
	var got result
	graceSeen := false
	deadline := time.After(10 * time.Second)
	for !graceSeen {
		select {
		case got = <-done:
			proxy.restore()
			t.Fatalf("b took the lapsed lock while its holder could not publish yet, and loaded the spent set: %v, spent: %v",
				got.err, sameSet(got.set, s0))
		case <-deadline:
			t.Fatal("b neither waited in a grace nor took the lock")
		case <-time.After(2 * time.Millisecond):
			graceSeen = exists(a.keys.tokensGrace)
		}
	}
	proxy.restore()
	select {
	case got = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("b never took the lock after the grace")
	}
	if got.err != nil || !sameSet(got.set, s1) {
		t.Fatalf("the next holder did not load the lapsed holder's rotation: %v, spent set: %v", got.err, sameSet(got.set, s0))
	}
	waitUntil(t, 10*time.Second, "the published rotation to leave a's pending state", func() bool { return !a.Stats().Pending })
}
