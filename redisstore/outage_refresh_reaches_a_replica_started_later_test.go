package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// With OutageBound, a replica refreshes on its own during a long outage.
// Its rotation reaches Redis as soon as Redis is back, without waiting for
// the replica's next Redis call, so a replica started afterwards loads it
// rather than the set whose refresh token was spent.
func TestOutageRefreshReachesAReplicaStartedLater(t *testing.T) {
	const bound = time.Minute
	r := startRedis(t, 0)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sealer := newSealer(t, newKey(t))
	opts := Options{OpTimeout: 300 * time.Millisecond, Now: clock, LoginPrefix: uniquePrefix(t)}
	login := credentials.Login{AccountID: "acct-bound-later", UserID: "user-bound-later"}
	s0 := testTokenSet("bound-later", 0, 10*time.Minute)
	a := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0, LockTimeout: 5 * time.Second, OutageBound: bound})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r.pause()
	if _, err := a.Lock(ctx); err == nil {
		t.Fatal("locked without Redis at the start of the outage")
	}
	mu.Lock()
	now = now.Add(bound + 10*time.Minute) // past the bound, token expired
	mu.Unlock()
	release, err := a.Lock(ctx)
	if err != nil {
		t.Fatalf("past the bound with an expired token: %v", err)
	}
	s1 := testTokenSet("bound-later", 1, time.Hour)
	if err := a.CompareAndSwap(ctx, s0, s1); err != nil {
		t.Fatal(err)
	}
	release()
	r.resume()

	waitUntil(t, 10*time.Second, "the outage's rotation to be published", func() bool { return !a.Stats().Pending })
	later := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0})
	defer later.Close()
	if got, err := later.Load(ctx); err != nil || !sameSet(got, s1) {
		t.Fatalf("a replica started after Redis returned loads the spent set: %v", err)
	}
}
