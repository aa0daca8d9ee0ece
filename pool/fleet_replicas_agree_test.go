package pool_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

// memShared is an in-memory pool.Shared, the contract redisstore.PoolState
// implements on Redis.
type memShared struct {
	mu      sync.Mutex
	threads map[string]string
	limits  map[string]time.Time
	now     func() time.Time
}

func (m *memShared) Assign(_ context.Context, thread, proposed string, avoid []string, _ time.Duration) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.threads[thread]; ok && !slices.Contains(avoid, cur) {
		return cur, nil
	}
	m.threads[thread] = proposed
	return proposed, nil
}

func (m *memShared) Limit(_ context.Context, member string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if until.After(m.limits[member]) {
		m.limits[member] = until
	}
	return nil
}

func (m *memShared) Limits(context.Context) (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range m.limits {
		if v.After(m.now()) {
			out[k] = v
		}
	}
	return out, nil
}

// replica is one replica's pool over its own transports of logins a, b
// and c; a login whose flag is set answers usage_limit_reached.
type replica struct {
	pool  *pool.Pool
	calls map[string]*atomic.Int64
	mu    sync.Mutex
	last  string // the member that last answered 200
}

func newReplica(t *testing.T, c *clock, shared pool.Shared, limited map[string]*atomic.Bool, reset time.Time) *replica {
	t.Helper()
	r := &replica{calls: map[string]*atomic.Int64{}}
	var ms []pool.Member
	for _, name := range []string{"a", "b", "c"} {
		s := &stub{name: name}
		flag := limited[name]
		s.answer = func(*http.Request) (*http.Response, error) {
			if flag.Load() {
				return limitReached(reset), nil
			}
			r.mu.Lock()
			r.last = name
			r.mu.Unlock()
			return ok(nil), nil
		}
		r.calls[name] = &s.calls
		ms = append(ms, pool.Member{Name: name, Transport: s})
	}
	p, err := pool.NewWithClock(pool.Options{Shared: shared, Logger: slog.New(slog.DiscardHandler)}, c.Now, ms...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	r.pool = p
	return r
}

// servedBy sends one request of thread and returns the member that served it.
func (r *replica) servedBy(t *testing.T, thread string) string {
	t.Helper()
	resp, err := get(t, r.pool, transport.WithThread(context.Background(), thread))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("thread %s: %v, %v", thread, resp, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// With shared state two replicas agree which login serves each thread, a
// limit one replica meets keeps the other off that login after its next
// read of the fleet's limits, and a moved thread moves to the same login
// on both.
func TestFleetReplicasAgree(t *testing.T) {
	c := newClock()
	shared := &memShared{threads: map[string]string{}, limits: map[string]time.Time{}, now: c.Now}
	limited := map[string]*atomic.Bool{"a": {}, "b": {}, "c": {}}
	reset := c.Now().Add(time.Hour)
	r1 := newReplica(t, c, shared, limited, reset)
	r2 := newReplica(t, c, shared, limited, reset)
	threads := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	home := map[string]string{}
	r2.servedBy(t, "offset") // replica 2's turns are one ahead of replica 1's
	for _, th := range threads {
		home[th] = r1.servedBy(t, th)
		// r2 has seen other threads first, so alone it would pick otherwise.
		r2.servedBy(t, "warm-"+th)
	}
	for _, th := range threads {
		if got := r2.servedBy(t, th); got != home[th] {
			t.Errorf("thread %s: replica 1 on %s, replica 2 on %s", th, home[th], got)
		}
	}

	// Login a reaches its limit; replica 1 meets it.
	limited["a"].Store(true)
	var onA string
	for _, th := range threads {
		if home[th] == "a" {
			onA = th
		}
	}
	if onA == "" {
		t.Fatal("no thread on login a")
	}
	moved := r1.servedBy(t, onA)
	if moved == "a" {
		t.Fatal("thread stayed on its limited login")
	}
	// Replica 2 reads the fleet's limits within a second.
	c.Add(2 * time.Second)
	before := r2.calls["a"].Load()
	if got := r2.servedBy(t, onA); got != moved {
		t.Errorf("moved thread: replica 1 on %s, replica 2 on %s", moved, got)
	}
	for i := range 10 {
		r2.servedBy(t, "new-"+string(rune('a'+i)))
	}
	if n := r2.calls["a"].Load() - before; n != 0 {
		t.Errorf("replica 2 sent %d requests to the login replica 1 found limited", n)
	}
}
