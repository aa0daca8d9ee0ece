package bench_test

import (
	"fmt"
	"testing"

	"github.com/agentauth/agentauth/bench/internal/workload"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

// agentTransport is the "thread" case's transport: an Agent Identity of
// its own over a no-op base, registrations stubbed.
func agentTransport(tb testing.TB) *transport.Transport {
	tb.Helper()
	cred, err := workload.AgentIdentity(workload.NewRecord())
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := transport.New(workload.NewNopBase(), transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    (&workload.Registrar{}).Client(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// pooledThread is the cached thread path through a pool of n such
// transports (n = 0: the one transport alone), warmed up: the thread has
// its member and that member its task and assertion.
func pooledThread(tb testing.TB, n int) *workload.Target {
	tb.Helper()
	ctx, cancel := workload.HandlerContext()
	tb.Cleanup(cancel)
	c, _ := workload.CaseNamed("thread")
	ctx = transport.WithThread(ctx, workload.ThreadKey)
	if n == 0 {
		rt := agentTransport(tb)
		t := &workload.Target{Case: c, RT: rt, Ctx: ctx, Transport: rt}
		if err := t.Warm(); err != nil {
			tb.Fatal(err)
		}
		return t
	}
	var members []pool.Member
	for i := range n {
		members = append(members, pool.Member{Name: fmt.Sprintf("login-%d", i), Transport: agentTransport(tb)})
	}
	p, err := pool.New(pool.Options{}, members...)
	if err != nil {
		tb.Fatal(err)
	}
	t := &workload.Target{Case: c, RT: p, Ctx: ctx}
	if err := t.Warm(); err != nil {
		tb.Fatal(err)
	}
	return t
}

// BenchmarkPool is the cached thread path of one transport alone and
// behind a pool of three logins (the thread already on one of them); the
// pool's target is ≤ 5 % more time and the same allocations.
func BenchmarkPool(b *testing.B) {
	for _, n := range []int{0, 3} {
		name := "thread/alone"
		if n > 0 {
			name = fmt.Sprintf("thread/pool%d", n)
		}
		b.Run(name+"/serial", func(b *testing.B) { workload.Serial(b, pooledThread(b, n)) })
		b.Run(name+"/parallel", func(b *testing.B) { workload.Parallel(b, pooledThread(b, n)) })
	}
}

// TestPoolAddsNoAllocation: the pool's cached thread path allocates
// exactly what the transport's does.
func TestPoolAddsNoAllocation(t *testing.T) {
	alone, pooled := pooledThread(t, 0), pooledThread(t, 3)
	allocs := func(tg *workload.Target) float64 {
		req := workload.NewRequest(tg.Ctx, workload.ResourceURL)
		return testing.AllocsPerRun(200, func() {
			if _, err := tg.RT.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
		})
	}
	a, p := allocs(alone), allocs(pooled)
	if a == 0 || p != a {
		t.Errorf("allocations per request: pool %v, one transport %v", p, a)
	}
	if err := alone.CheckCached(); err != nil {
		t.Error(err)
	}
}

// BenchmarkPoolOwnCost is what the pool itself adds per cached thread
// request: a pool of three no-op members against one no-op base, so the
// difference is the pool's work alone (its clock reading, the thread's
// lookup, the member's health and the usage headers of the answer).
func BenchmarkPoolOwnCost(b *testing.B) {
	ctx, cancel := workload.HandlerContext()
	b.Cleanup(cancel)
	ctx = transport.WithThread(ctx, workload.ThreadKey)
	c, _ := workload.CaseNamed("bare")
	b.Run("base", func(b *testing.B) {
		workload.Serial(b, &workload.Target{Case: c, RT: workload.NewNopBase(), Ctx: ctx})
	})
	b.Run("pool3", func(b *testing.B) {
		var members []pool.Member
		for i := range 3 {
			members = append(members, pool.Member{Name: fmt.Sprintf("login-%d", i), Transport: workload.NewNopBase()})
		}
		p, err := pool.New(pool.Options{}, members...)
		if err != nil {
			b.Fatal(err)
		}
		t := &workload.Target{Case: c, RT: p, Ctx: ctx}
		if err := t.Warm(); err != nil {
			b.Fatal(err)
		}
		workload.Serial(b, t)
	})
}
