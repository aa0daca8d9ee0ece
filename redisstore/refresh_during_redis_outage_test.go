package redisstore

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// Acceptance 4 at the coordinator: with Redis stopped (frozen or killed),
// Lock fails within about OpTimeout with a temporary error and Load
// answers from memory with the still-valid token, the
// outage is logged once and counted; when Redis is back, coordination
// resumes (after a kill, which loses the data, the fleet is re-seeded with
// the newest set this replica saw).
func TestCoordinatorRedisOutage(t *testing.T) {
	for _, mode := range []string{"paused", "killed"} {
		t.Run(mode, func(t *testing.T) {
			const opTimeout = 300 * time.Millisecond
			r := startRedis(t, 0)
			logs := &logRecorder{}
			s := newSealedStore(t, r.addr, newSealer(t, newKey(t)), Options{OpTimeout: opTimeout, Logger: slog.New(logs)})
			login := credentials.Login{AccountID: "acct-outage"}
			s0, s1 := testTokenSet("outage", 0, time.Hour), testTokenSet("outage", 1, time.Hour)
			c := coordinator(t, s, login, CoordinatorOptions{Initial: s0, LockTimeout: 5 * time.Second})
			ctx := context.Background()
			if got, err := c.Load(ctx); err != nil || !sameSet(got, s0) {
				t.Fatalf("before: %v", err)
			}
			if mode == "paused" {
				r.pause()
			} else {
				r.kill()
			}
			for i := range 3 {
				start := time.Now()
				release, err := c.Lock(ctx)
				if release != nil || !transport.IsTemporary(err) {
					t.Fatalf("Lock in the outage: %v", err)
				}
				// Load answers with the newest set this replica saw while
				// its token is valid: no request fails for the outage.
				got, lerr := c.Load(ctx)
				took := time.Since(start)
				if lerr != nil || !sameSet(got, s0) {
					t.Fatalf("Load in the outage: %v", lerr)
				}
				if took > 2*opTimeout+2*time.Second {
					t.Fatalf("attempt %d: Lock and Load took %v with OpTimeout %v", i, took, opTimeout)
				}
				t.Logf("%s, attempt %d: Lock and Load failed in %v (OpTimeout %v)", mode, i, took.Round(time.Millisecond), opTimeout)
			}
			st := c.Stats()
			if !st.Down || st.Outages != 1 || st.Errors < 6 || st.Uncoordinated != 0 {
				t.Fatalf("stats in the outage: %+v", st)
			}
			if w := logs.count("WARN"); w != 1 {
				t.Fatalf("%d warnings for one outage:\n%s", w, logs.all())
			}
			if mode == "paused" {
				r.resume()
			} else {
				r.restart()
			}
			resumed := time.Now()
			release, err := c.Lock(ctx)
			if err != nil {
				t.Fatalf("Lock after the outage: %v", err)
			}
			// A SET NX that timed out here but ran once the frozen Redis
			// thawed leaves this replica's own token in the lock; Lock must
			// take it, not wait for it to expire (LockTimeout, 5 s).
			if d := time.Since(resumed); d > 2*time.Second {
				t.Fatalf("%s: the first Lock after Redis returned took %v", mode, d)
			}
			t.Logf("%s: first Lock after Redis returned took %v", mode, time.Since(resumed).Round(time.Millisecond))
			cur, err := c.Load(ctx)
			if err != nil || !sameSet(cur, s0) {
				t.Fatalf("Load after the outage: %v", err)
			}
			if err := c.CompareAndSwap(ctx, cur, s1); err != nil {
				t.Fatal(err)
			}
			release()
			st = c.Stats()
			if st.Down || st.Outages != 1 || logs.count("INFO") != 1 {
				t.Fatalf("after the outage: %+v\n%s", st, logs.all())
			}
		})
	}
}

// CoordinatorOptions.OutageBound: while the outage is shorter than the
// bound, or the token is still valid, the replica never refreshes on its
// own; past the bound with an expired token it may, and the set it
// refreshed is published when Redis answers again.
func TestCoordinatorOutageBound(t *testing.T) {
	const opTimeout, bound = 300 * time.Millisecond, time.Minute
	r := startRedis(t, 0)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	sealer := newSealer(t, newKey(t))
	opts := Options{OpTimeout: opTimeout, Now: clock, LoginPrefix: uniquePrefix(t)}
	s := newSealedStore(t, r.addr, sealer, opts)
	login := credentials.Login{AccountID: "acct-bound"}
	s0 := testTokenSet("bound", 0, 10*time.Minute) // expires 10 min from now
	c := coordinator(t, s, login, CoordinatorOptions{Initial: s0, LockTimeout: 5 * time.Second, OutageBound: bound})
	ctx := context.Background()
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r.pause()
	if _, err := c.Lock(ctx); !transport.IsTemporary(err) {
		t.Fatalf("outage just started: %v", err)
	}
	advance(2 * bound) // past the bound, token still valid
	if _, err := c.Lock(ctx); !transport.IsTemporary(err) {
		t.Fatalf("past the bound with a valid token: %v", err)
	}
	advance(10 * time.Minute) // and now the token has expired
	release, err := c.Lock(ctx)
	if err != nil {
		t.Fatalf("past the bound with an expired token: %v", err)
	}
	cur, err := c.Load(ctx)
	if err != nil || !sameSet(cur, s0) {
		t.Fatalf("Load past the bound: %v", err)
	}
	s1 := testTokenSet("bound", 1, time.Hour)
	if err := c.CompareAndSwap(ctx, cur, s1); err != nil {
		t.Fatalf("swap past the bound: %v", err)
	}
	release()
	if st := c.Stats(); st.Uncoordinated != 1 || !st.Pending || !st.Down {
		t.Fatalf("stats %+v", st)
	}
	r.resume()
	if got, err := c.Load(ctx); err != nil || !sameSet(got, s1) {
		t.Fatalf("Load after the outage: %v", err)
	}
	other := coordinator(t, newSealedStore(t, r.addr, sealer, opts), login, CoordinatorOptions{})
	if got, err := other.Load(ctx); err != nil || !sameSet(got, s1) {
		t.Fatalf("the set refreshed in the outage did not reach the fleet: %v", err)
	}
	if st := c.Stats(); st.Pending || st.Down {
		t.Fatalf("stats after the outage %+v", st)
	}
}
