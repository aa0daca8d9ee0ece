package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// fleetOf returns n Stores (replicas) sharing a sealing key and a login
// prefix on addr.
func fleetOf(tb testing.TB, n int, addr string, opts Options) []*Store {
	tb.Helper()
	sealer := newSealer(tb, newKey(tb))
	if opts.LoginPrefix == "" {
		opts.LoginPrefix = uniquePrefix(tb)
	}
	out := make([]*Store, n)
	for i := range out {
		out[i] = newSealedStore(tb, addr, sealer, opts)
	}
	return out
}

func coordinator(tb testing.TB, s *Store, login credentials.Login, opts CoordinatorOptions) *Coordinator {
	tb.Helper()
	c, err := s.RefreshCoordinator(login, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func sameSet(a, b *credentials.TokenSet) bool {
	return a != nil && b != nil && a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.IDToken == b.IDToken && a.AccountID == b.AccountID && a.LastRefresh.Equal(b.LastRefresh)
}

// The first replica's Initial seeds the fleet; a later replica with an
// older Initial adopts the fleet's set instead of overwriting it.
func TestCoordinatorSeedsOnce(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	stores := fleetOf(t, 3, addr, Options{})
	login := credentials.Login{AccountID: "acct-seed", UserID: "user-seed"}
	first, stale := testTokenSet("seed", 2, time.Hour), testTokenSet("seed", 1, time.Hour)
	got, err := coordinator(t, stores[0], login, CoordinatorOptions{Initial: first}).Load(ctx)
	if err != nil || !sameSet(got, first) {
		t.Fatalf("first replica: %v", err)
	}
	got, err = coordinator(t, stores[1], login, CoordinatorOptions{Initial: stale}).Load(ctx)
	if err != nil || !sameSet(got, first) {
		t.Fatalf("second replica did not adopt the fleet's set: %v", err)
	}
	other := credentials.Login{AccountID: "acct-seed-none"}
	if got, err := coordinator(t, stores[2], other, CoordinatorOptions{}).Load(ctx); err != nil || got != nil {
		t.Fatalf("unseeded login: %v, %v", got, err)
	}
	if _, err := stores[0].RefreshCoordinator(login, CoordinatorOptions{Initial: testTokenSet("another", 1, time.Hour)}); err == nil {
		t.Fatal("an Initial of another account was accepted")
	}
}

// A replica that read an older set cannot overwrite a newer rotation.
func TestCoordinatorCompareAndSwapRejectsStale(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	stores := fleetOf(t, 2, addr, Options{})
	login := credentials.Login{AccountID: "acct-cas"}
	s0, s1, s2 := testTokenSet("cas", 0, time.Hour), testTokenSet("cas", 1, time.Hour), testTokenSet("cas", 2, time.Hour)
	a := coordinator(t, stores[0], login, CoordinatorOptions{})
	b := coordinator(t, stores[1], login, CoordinatorOptions{})
	if err := a.CompareAndSwap(ctx, nil, s0); err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, nil, s1); !errors.Is(err, credentials.ErrTokenSetChanged) {
		t.Fatalf("create over an existing set: %v", err)
	}
	if err := a.CompareAndSwap(ctx, s0, s1); err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, s0, s2); !errors.Is(err, credentials.ErrTokenSetChanged) {
		t.Fatalf("stale swap: %v, want ErrTokenSetChanged", err)
	}
	got, err := b.Load(ctx)
	if err != nil || !sameSet(got, s1) {
		t.Fatalf("fleet set after a stale swap is not the newer rotation: %v", err)
	}
	// prev is compared on its access and refresh tokens only.
	prev := *s1
	prev.IDToken, prev.LastRefresh = "", time.Time{}
	if err := b.CompareAndSwap(ctx, &prev, s2); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Swaps != 1 || st.Conflicts != 2 {
		t.Fatalf("stats %+v", st)
	}
}

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

func TestCoordinatorOptionsValidated(t *testing.T) {
	addr := redisAddr(t)
	s := newSealedStore(t, addr, newSealer(t, newKey(t)), Options{OpTimeout: time.Second})
	login := credentials.Login{AccountID: "acct-opts"}
	for _, o := range []CoordinatorOptions{{LockTimeout: -1}, {OutageBound: -1}, {LockTimeout: time.Second}} {
		if _, err := s.RefreshCoordinator(login, o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
	}
	if _, err := s.RefreshCoordinator(login, CoordinatorOptions{Initial: &credentials.TokenSet{RefreshToken: "r"}}); err == nil {
		t.Fatal("an Initial without an access token was accepted")
	}
}

func total(a, b, c int) int { return a * b * c }
