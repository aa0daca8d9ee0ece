package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// After Redis restarts empty, an idle replica that last saw an old set
// seeds it first. The replicas that know a newer set do not adopt the
// older one: their Load puts the newer set back (a set's generation, the
// token's issue time, only moves forward), and from then on the idle
// replica loads it too. An older seed never replaces a newer set.
func TestOlderSeedNeverReplacesNewerSet(t *testing.T) {
	r := startRedis(t, 0)
	sealer := newSealer(t, newKey(t))
	opts := Options{LoginPrefix: uniquePrefix(t)}
	login := credentials.Login{AccountID: "acct-generation", UserID: "user-generation"}
	s0, s1, s2 := testTokenSet("generation", 0, time.Hour), testTokenSet("generation", 1, time.Hour), testTokenSet("generation", 2, time.Hour)
	ctx := context.Background()
	idle := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0})
	busy := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0})
	if _, err := idle.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, next := range []*credentials.TokenSet{s1, s2} { // busy rotates twice
		release, err := busy.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := busy.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := busy.CompareAndSwap(ctx, cur, next); err != nil {
			t.Fatal(err)
		}
		release()
	}

	r.kill()
	r.restart()
	if got, err := idle.Load(ctx); err != nil || !sameSet(got, s0) {
		t.Fatalf("idle replica's re-seed: %v", err)
	}
	if got, err := busy.Load(ctx); err != nil || !sameSet(got, s2) {
		t.Fatalf("a replica that knows a newer set adopted the older seed: %v", err)
	}
	if got, err := idle.Load(ctx); err != nil || !sameSet(got, s2) {
		t.Fatalf("the idle replica does not load the newer set: %v", err)
	}
	// A replica started now from the first auth.json does not replace it.
	late := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s0})
	if got, err := late.Load(ctx); err != nil || !sameSet(got, s2) {
		t.Fatalf("an older seed replaced the fleet's set: %v", err)
	}
}
