package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// Redis restarts empty while a replica's token request is out. The
// swap that stores the rotation finds no set, or one an idle replica
// seeded from its older auth.json meanwhile: either way the rotation is
// the newest set the fleet has, so it is stored (not "changed", which
// would leave it in one replica's memory while the others re-seed the
// spent set).
func TestRedisRestartedEmptyKeepsTheRotation(t *testing.T) {
	for _, reseeded := range []bool{false, true} {
		name := "missing"
		if reseeded {
			name = "reseeded-older"
		}
		t.Run(name, func(t *testing.T) {
			r := startRedis(t, 0)
			sealer := newSealer(t, newKey(t))
			opts := Options{LoginPrefix: uniquePrefix(t)}
			login := credentials.Login{AccountID: "acct-restart", UserID: "user-restart"}
			seed, s1, s2 := testTokenSet("restart", 0, time.Hour), testTokenSet("restart", 1, time.Hour), testTokenSet("restart", 2, time.Hour)
			ctx := context.Background()
			a := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: s1})
			defer a.Close()
			release, err := a.Lock(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cur, err := a.Load(ctx); err != nil || !sameSet(cur, s1) {
				t.Fatal(err)
			}
			r.kill() // the token request is out...
			r.restart()
			if reseeded {
				idle := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: seed})
				if got, err := idle.Load(ctx); err != nil || !sameSet(got, seed) {
					t.Fatalf("idle replica: %v", err)
				}
			}
			if err := a.CompareAndSwap(ctx, s1, s2); err != nil {
				t.Fatalf("storing the rotation after Redis restarted empty: %v", err)
			}
			release()
			next := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{Initial: seed})
			if got, err := next.Load(ctx); err != nil || !sameSet(got, s2) {
				t.Fatalf("the next replica does not load the rotation: %v", err)
			}
		})
	}
}
