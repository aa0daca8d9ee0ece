package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// startTogether runs fn(i) for i in [0, n) on n goroutines released at the
// same moment, and returns the first error once all have finished.
func startTogether(n int, fn func(i int) error) error {
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := fn(i); err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	return <-errs
}

// TestStampedeOneThreadKey: 1,000 concurrent first requests on one thread
// key cause exactly one task registration, and all of them are accepted on
// that thread's task.
func TestStampedeOneThreadKey(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	ident := newRuntime(t, srv, uniqueAccount("stampede"), false)
	// Hold the registration open long enough that every request joins it.
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Latency: 100 * time.Millisecond, Times: 1})
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, ident)}).rt

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	const n = 1000
	var mu sync.Mutex
	tasks := map[string]int{}
	err := startTogether(n, func(int) error {
		status, echo, err := roundTripEcho(ctx, rt, url, "one-thread")
		if err != nil {
			return err
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeAssertion ||
			echo.ExternalTaskRef != "one-thread" || echo.AgentRuntimeID != ident.AgentRuntimeID {
			return fmt.Errorf("status %d, echo mode %q ref %q", status, echo.Mode, echo.ExternalTaskRef)
		}
		mu.Lock()
		tasks[echo.TaskID]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	if st.TaskRegistrations != 1 || st.ThreadTaskRegistrations != 1 || st.RegistrationsByExternalRef["one-thread"] != 1 {
		t.Fatalf("server counted %d task registrations (%d thread, by ref %v), want exactly 1",
			st.TaskRegistrations, st.ThreadTaskRegistrations, st.RegistrationsByExternalRef)
	}
	if got := rt.Stats().ThreadRegistrations; got != 1 {
		t.Fatalf("transport counted %d thread registrations, want 1", got)
	}
	if len(tasks) != 1 || st.RequestsByMode[identitytest.ModeAssertion] != n {
		t.Fatalf("requests used %d tasks, server accepted %d assertions; want 1 task, %d assertions",
			len(tasks), st.RequestsByMode[identitytest.ModeAssertion], n)
	}
}

// TestStampedeManyThreadKeys: 200 thread keys and keyless requests, all at
// once, make exactly one registration per key (with that key as
// external_task_ref) plus one process-task registration, and the server
// sees every request on its own thread's task.
func TestStampedeManyThreadKeys(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	ident := newRuntime(t, srv, uniqueAccount("many"), false)
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, ident)}).rt

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	const keys, perKey, keyless = 200, 2, 100
	threadOf := func(i int) string {
		if i >= keys*perKey {
			return ""
		}
		return fmt.Sprintf("thread-%03d", i%keys)
	}
	var mu sync.Mutex
	taskOfThread := map[string]map[string]bool{}
	err := startTogether(keys*perKey+keyless, func(i int) error {
		thread := threadOf(i)
		status, echo, err := roundTripEcho(ctx, rt, url, thread)
		if err != nil {
			return err
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeAssertion || echo.AgentRuntimeID != ident.AgentRuntimeID {
			return fmt.Errorf("status %d mode %q", status, echo.Mode)
		}
		if echo.ExternalTaskRef != thread {
			return fmt.Errorf("request for thread %q was accepted on the task of thread %q", thread, echo.ExternalTaskRef)
		}
		mu.Lock()
		if taskOfThread[thread] == nil {
			taskOfThread[thread] = map[string]bool{}
		}
		taskOfThread[thread][echo.TaskID] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	st := srv.Stats()
	if st.ThreadTaskRegistrations != keys || st.ProcessTaskRegistrations != 1 || len(st.RegistrationsByExternalRef) != keys {
		t.Fatalf("server counted %d thread (%d refs) and %d process registrations, want %d and 1",
			st.ThreadTaskRegistrations, len(st.RegistrationsByExternalRef), st.ProcessTaskRegistrations, keys)
	}
	for i := range keys {
		ref := fmt.Sprintf("thread-%03d", i)
		if got := st.RegistrationsByExternalRef[ref]; got != 1 {
			t.Errorf("external_task_ref %q registered %d times, want 1", ref, got)
		}
	}
	if len(taskOfThread) != keys+1 {
		t.Fatalf("saw %d threads (incl. process), want %d", len(taskOfThread), keys+1)
	}
	seenTask := map[string]string{}
	for thread, ids := range taskOfThread {
		if len(ids) != 1 {
			t.Errorf("thread %q used %d tasks, want 1", thread, len(ids))
		}
		for id := range ids {
			if other, dup := seenTask[id]; dup {
				t.Errorf("task %q used by threads %q and %q", id, other, thread)
			}
			seenTask[id] = thread
		}
	}
	s := rt.Stats()
	if s.ThreadRegistrations != keys || s.ProcessRegistrations != 1 || s.CachedThreads != keys {
		t.Fatalf("transport stats: %d thread, %d process registrations, %d cached; want %d, 1, %d",
			s.ThreadRegistrations, s.ProcessRegistrations, s.CachedThreads, keys, keys)
	}
}

// TestThreadCacheCapacity: with capacity C, 2,000 distinct thread keys leave
// at most C cached, every assertion still names its own thread's task, and
// an evicted key registers again on its next use.
func TestThreadCacheCapacity(t *testing.T) {
	// Thousands of registrations: a counting fake registrar keeps this fast;
	// the reference server's verification is covered by the other tests.
	tasks := newTaskCounter()
	base := newStubBase(tasks)
	ident := agentIdentityRecord(t)
	const origin = "https://chatgpt.test"
	const capacity, keys = 100, 2000
	rt := newEnv(t, envOptions{production: true, base: base, plain: true, credential: agentCred(t, ident), defaultStore: true,
		options: func(o *transport.Options) {
			o.Tuning = transport.Tuning{ChatGPTBaseURL: origin, AuthAPIBaseURL: origin + "/api/accounts", MaxThreads: capacity}
		}}).rt

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := origin + "/v1/responses"
	key := func(i int) string { return fmt.Sprintf("lru-%04d", i) }
	if err := runWorkers(keys, 2, func(i int) error { return stubSend(ctx, rt, url, key(i)) }); err != nil {
		t.Fatal(err)
	}
	s := rt.Stats()
	if s.CachedThreads > capacity || s.CachedThreads == 0 {
		t.Fatalf("CachedThreads = %d after %d keys, want 1..%d", s.CachedThreads, keys, capacity)
	}
	if s.ThreadRegistrations != keys {
		t.Fatalf("thread registrations = %d, want %d", s.ThreadRegistrations, keys)
	}

	// Key 0 was used first and never again: it has been evicted.
	if err := stubSend(ctx, rt, url, key(0)); err != nil {
		t.Fatal(err)
	}
	if got := tasks.registrations(key(0)); got != 2 {
		t.Fatalf("evicted key registered %d times, want 2", got)
	}
	if got := rt.Stats().CachedThreads; got > capacity {
		t.Fatalf("CachedThreads = %d, want <= %d", got, capacity)
	}

	// Eviction never hands a thread another thread's task.
	if err := base.parseError(); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		ids := base.tasksFor(key(i))
		want := 1
		if i == 0 {
			want = 2 // the original task and the one registered after eviction
		}
		if len(ids) != want || tasks.registrations(key(i)) != want {
			t.Fatalf("thread %q used %d tasks and registered %d times, want %d", key(i), len(ids), tasks.registrations(key(i)), want)
		}
		for id := range ids {
			if owner := tasks.ownerOf(id); owner != key(i) {
				t.Fatalf("thread %q was sent with the task of %q", key(i), owner)
			}
		}
	}
}

// TestThreadCacheIdleTTL: a thread task unused for longer than IdleTTL (on
// the injected clock) is dropped and registered again on next use; one used
// within the TTL is kept.
func TestThreadCacheIdleTTL(t *testing.T) {
	clk := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{Now: clk.Now})
	ident := newRuntime(t, srv, uniqueAccount("ttl"), false)
	base := newStubBase(srv.Handler())
	rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: agentCred(t, ident), options: func(o *transport.Options) {
		testhooks.Of(o).Now = clk.Now
		o.Tuning.ThreadIdleTTL = 10 * time.Second
	}}).rt

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	regs := func(thread string) int { return srv.Stats().RegistrationsByExternalRef[thread] }

	for _, thread := range []string{"ttl-a", "ttl-b"} {
		if err := stubSend(ctx, rt, url, thread); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(8 * time.Second)
	if err := stubSend(ctx, rt, url, "ttl-a"); err != nil { // refreshes a's idle time
		t.Fatal(err)
	}
	if regs("ttl-a") != 1 {
		t.Fatalf("a used within the TTL registered %d times, want 1", regs("ttl-a"))
	}
	clk.Advance(5 * time.Second) // b idle 13 s > 10 s + 2 s slack; a idle 5 s
	for _, thread := range []string{"ttl-a", "ttl-b"} {
		if err := stubSend(ctx, rt, url, thread); err != nil {
			t.Fatal(err)
		}
	}
	if regs("ttl-a") != 1 || regs("ttl-b") != 2 {
		t.Fatalf("registrations a=%d b=%d, want a=1 (fresh) b=2 (expired)", regs("ttl-a"), regs("ttl-b"))
	}
	if got := rt.Stats().CachedThreads; got != 2 {
		t.Fatalf("CachedThreads = %d, want 2", got)
	}
}
