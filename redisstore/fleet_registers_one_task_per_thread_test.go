package redisstore

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// Acceptance 1, 2 and 5: four replica processes × 50 threads started
// together register exactly 50 tasks with the store (200 without it), every
// request of a thread in every process carries that thread's one task, and
// Redis holds nothing secret afterwards.
func TestFleetOneTaskPerThread(t *testing.T) {
	const replicas, threads, requests = 4, 50, 3
	addr := redisAddr(t)

	run := func(t *testing.T, withStore bool) (*identitytest.Server, identity.Record, map[string][]string, Stats, string) {
		srv := newServer(t)
		rec := newIdentity(t, srv)
		cfg := childConfig{srv: srv, rec: rec, prefix: uniquePrefix(t), threads: threads, requests: requests}
		if withStore {
			cfg.redisAddr = addr
		}
		all, sum := runFleet(t, replicas, cfg)
		if len(all) != threads {
			t.Fatalf("%d threads answered, want %d", len(all), threads)
		}
		return srv, rec, all, sum, cfg.prefix
	}

	var withStore, without int
	t.Run("redis", func(t *testing.T) {
		srv, rec, all, sum, prefix := run(t, true)
		st := srv.Stats()
		withStore = st.ThreadTaskRegistrations
		if st.ThreadTaskRegistrations != threads {
			t.Errorf("%d task registrations with the Redis store, want %d", st.ThreadTaskRegistrations, threads)
		}
		registered := map[string]string{} // thread → its one task at the server
		for _, task := range srv.Tasks() {
			if task.ExternalTaskRef != "" {
				registered[task.ExternalTaskRef] = task.TaskID
			}
		}
		for th, tasks := range all {
			slices.Sort(tasks)
			if u := slices.Compact(tasks); len(u) != 1 || u[0] != registered[th] {
				t.Errorf("%s was served with tasks %v across the fleet, want only %q", th, u, registered[th])
			}
			if n := st.RegistrationsByExternalRef[th]; n != 1 {
				t.Errorf("%s registered %d times", th, n)
			}
		}
		if sum.Registrations != threads || sum.LocalFallbacks != 0 || sum.Outages != 0 ||
			sum.Hits+sum.Registrations != replicas*threads {
			t.Errorf("summed store stats %+v", sum)
		}
		t.Logf("with the Redis store: %d task registrations for %d threads × %d replicas (store: %d hits, %d waits)",
			st.ThreadTaskRegistrations, threads, replicas, sum.Hits, sum.Waits)
		scanForSecrets(t, addr, srv, rec, prefix, registered)
	})
	t.Run("in-memory", func(t *testing.T) {
		srv, _, all, _, _ := run(t, false)
		st := srv.Stats()
		without = st.ThreadTaskRegistrations
		if st.ThreadTaskRegistrations != replicas*threads {
			t.Errorf("%d task registrations without a store, want %d", st.ThreadTaskRegistrations, replicas*threads)
		}
		for th, tasks := range all {
			slices.Sort(tasks)
			if u := slices.Compact(tasks); len(u) != replicas {
				t.Errorf("%s: %d distinct tasks without a store, want one per replica (%d)", th, len(u), replicas)
			}
		}
		t.Logf("without a store: %d task registrations", st.ThreadTaskRegistrations)
	})
	t.Logf("task registrations for %d replicas × %d threads: %d with Redis, %d without", replicas, threads, withStore, without)
}

// scanForSecrets is acceptance 5: every key and value in Redis is checked
// against the private key and every assertion (and its signature) the
// server saw; this run's keys must be exactly one mapping per thread, whose
// value is that thread's task id, and no lock.
func scanForSecrets(t *testing.T, addr string, srv *identitytest.Server, rec identity.Record, prefix string, registered map[string]string) {
	t.Helper()
	key, err := rec.Key()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{rec.AgentPrivateKey.Reveal(), key.MarshalPrivateKey()}
	for _, r := range srv.Requests() {
		h := r.Header.Get("Authorization")
		if h == "" {
			continue
		}
		secrets = append(secrets, h, strings.TrimPrefix(h, "AgentAssertion "))
		if a, err := identity.ParseAssertion(h); err == nil {
			secrets = append(secrets, a.Signature.Reveal())
		}
	}
	if len(secrets) < 3 {
		t.Fatal("no assertions recorded to check against")
	}
	tasks := map[string]bool{}
	for _, id := range registered {
		tasks[id] = true
	}
	c := newClient(t, addr)
	ctx := context.Background()
	var scanned, ours int
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		scanned++
		// Other tests' keys may be hashes (sealed token sets).
		values, _ := readValues(t, c, k)
		for _, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(strings.Join(values, "\x00"), s) {
				t.Fatalf("Redis key %q or its value holds a secret", k)
			}
		}
		v := strings.Join(values, "")
		if strings.Contains(k, "thread-") || strings.Contains(k, rec.AgentRuntimeID) {
			t.Fatalf("key %q names the thread or runtime in clear", k)
		}
		if strings.HasPrefix(k, prefix) {
			ours++
			if strings.HasSuffix(k, ":lock") || !tasks[v] {
				t.Fatalf("unexpected key %q = %q after the run", k, v)
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if ours != len(registered) {
		t.Fatalf("%d keys under this run's prefix, want one mapping per thread (%d)", ours, len(registered))
	}
	t.Logf("scanned %d Redis keys against %d secrets: none found", scanned, len(secrets))
}
