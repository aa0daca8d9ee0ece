package redisstore

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
)

// Acceptance 4: a replica process that took the fleet locks and is killed
// before publishing stalls the threads only until the locks expire; then
// another process registers each thread once, and a third is served from
// the fleet with the same tasks.
func TestFleetLockHolderKilled(t *testing.T) {
	const threads, lockTimeout = 5, 1500 * time.Millisecond
	addr := redisAddr(t)
	srv := newServer(t)
	rec := newIdentity(t, srv)
	cfg := childConfig{srv: srv, rec: rec, redisAddr: addr, prefix: uniquePrefix(t),
		threads: threads, requests: 2, lockTimeout: lockTimeout}

	holder := func() childConfig { c := cfg; c.hang = true; c.requests = 1; return c }()
	a := startChild(t, holder)
	a.expect(t, "ready", 30*time.Second)
	io.WriteString(a.stdin, "go\n")
	for range threads {
		a.expect(t, "hung", 30*time.Second)
	}
	// Every thread's lock is held by a; it dies without releasing any.
	locks := lockKeys(t, addr, cfg.prefix)
	if len(locks) != threads {
		t.Fatalf("%d locks held by the dying replica, want %d", len(locks), threads)
	}
	b := startFleet(t, 1, cfg) // ready before a dies, so that a's locks are still held
	a.cmd.Process.Kill()
	a.wait()
	killed := time.Now()

	all, st := b.run(t)
	took := time.Since(killed)
	if st.Takeovers != threads || st.Registrations != threads || st.Waits != threads || st.LocalFallbacks != 0 {
		t.Fatalf("taking over replica: %+v", st)
	}
	if took > lockTimeout+10*time.Second {
		t.Fatalf("takeover needed %v", took)
	}
	t.Logf("locks of the killed replica taken over %v after it died (lock timeout %v)", took.Round(time.Millisecond), lockTimeout)

	later, st2 := runFleet(t, 1, cfg)
	if st2.Hits != threads || st2.Registrations != 0 {
		t.Fatalf("later replica: %+v", st2)
	}
	sv := srv.Stats()
	if sv.ThreadTaskRegistrations != threads {
		t.Fatalf("%d registrations at the server, want %d", sv.ThreadTaskRegistrations, threads)
	}
	c := newClient(t, addr)
	s := newStore(t, addr, Options{Prefix: cfg.prefix})
	for i := range threads {
		th := threadName(i)
		u := slices.Compact(slices.Sorted(slices.Values(append(all[th], later[th]...))))
		if len(u) != 1 {
			t.Fatalf("%s served with %v", th, u)
		}
		v, err := c.Get(context.Background(), s.keysFor(storeKey(rec, th)).mapping).Result()
		if err != nil || v != u[0] {
			t.Fatalf("%s: fleet mapping %q (%v), want %q", th, v, err, u[0])
		}
	}
	if l := lockKeys(t, addr, cfg.prefix); len(l) != 0 {
		t.Fatalf("locks left: %d", len(l))
	}
}

func storeKey(rec identity.Record, thread string) taskcache.StoreKey {
	return taskcache.StoreKey{RuntimeID: rec.AgentRuntimeID, ExternalRef: thread}
}

func lockKeys(t *testing.T, addr, prefix string) []string {
	t.Helper()
	c := newClient(t, addr)
	ks, err := c.Keys(context.Background(), prefix+"*:lock").Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
