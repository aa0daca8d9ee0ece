package taskcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// safety bounds how long a test waits for something that should happen at
// once; reaching it means the test failed, not that it was slow.
const safety = 10 * time.Second

var errBoom = errors.New("boom")

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// registrar is a counting fake RegisterFunc. Calls return "KEY#N" (N = the
// call number for that key) unless fail is set. started, if set, receives the
// key as each call begins; release, if set, blocks each call until it can
// receive (or the call's ctx ends).
type registrar struct {
	started chan string
	release chan struct{}
	fail    atomic.Bool

	total  atomic.Int64
	mu     sync.Mutex
	perKey map[string]int
	ctxs   []context.Context
}

func (r *registrar) Register(ctx context.Context, key string) (string, error) {
	r.total.Add(1)
	r.mu.Lock()
	if r.perKey == nil {
		r.perKey = map[string]int{}
	}
	r.perKey[key]++
	n := r.perKey[key]
	r.ctxs = append(r.ctxs, ctx)
	r.mu.Unlock()
	if r.started != nil {
		r.started <- key
	}
	if r.release != nil {
		select {
		case <-r.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if r.fail.Load() {
		return "", errBoom
	}
	return key + "#" + strconv.Itoa(n), nil
}

func (r *registrar) calls(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.perKey[key]
}

// testOptions pins every source of nondeterminism: the clock, and jitter at
// r = 0.5 (so with the default 50 % jitter every wait is 3/4 of its base).
func testOptions(clk *fakeClock) CacheOptions {
	return CacheOptions{
		Now:            clk.Now,
		Rand:           func() float64 { return 0.5 },
		BackoffInitial: time.Second,
		BackoffMax:     8 * time.Second,
	}
}

func mustCache(t testing.TB, reg RegisterFunc, opts CacheOptions) *Cache {
	t.Helper()
	c, err := New(reg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// countWaiters makes c report every Get that reached the slow path; set it
// before the cache is shared. For a cancellable context (the DoChan path) a
// report means the caller has joined the flight; for one that cannot be
// canceled (the Do path) it is sent just before joining.
func countWaiters(c *Cache, n int) <-chan string {
	ch := make(chan string, n)
	c.onWait = func(k string) { ch <- k }
	return ch
}

func recvN[T any](t *testing.T, ch <-chan T, n int, what string) {
	t.Helper()
	timeout := time.After(safety)
	for i := range n {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("only %d of %d %s", i, n, what)
		}
	}
}

type result struct {
	task *Task
	err  error
}

func getAsync(c *Cache, ctx context.Context, key string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		t, err := c.Get(ctx, key)
		ch <- result{t, err}
	}()
	return ch
}

func recvResult(t *testing.T, ch <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(safety):
		t.Fatalf("%s did not return", what)
		return result{}
	}
}

func wantStats(t *testing.T, c *Cache, want CacheStats) {
	t.Helper()
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestNewTaskCacheDefaults(t *testing.T) {
	reg := (&registrar{}).Register
	c := mustCache(t, reg, CacheOptions{})
	if c.capacity != DefaultCapacity || c.ttlTicks != 3600 || c.policy.timeout != DefaultTimeout ||
		c.policy.backoff.initial != DefaultBackoffInitial || c.policy.backoff.max != DefaultBackoffMax ||
		c.policy.backoff.jitter != DefaultBackoffJitter || c.now == nil || c.policy.backoff.rand == nil {
		t.Errorf("defaults not applied: cap=%d ttl=%d timeout=%v backoff=%+v", c.capacity, c.ttlTicks, c.policy.timeout, c.policy.backoff)
	}

	c = mustCache(t, reg, CacheOptions{IdleTTL: -1, BackoffJitter: -1, BackoffInitial: 2 * time.Minute})
	if c.ttlTicks >= 0 || c.policy.backoff.jitter != 0 || c.policy.backoff.max != 2*time.Minute {
		t.Errorf("never-expire / no-jitter / max-follows-initial: ttl=%d backoff=%+v", c.ttlTicks, c.policy.backoff)
	}
	c = mustCache(t, reg, CacheOptions{IdleTTL: 1500 * time.Millisecond, BackoffJitter: 1})
	if c.ttlTicks != 2 || c.policy.backoff.jitter != 1 {
		t.Errorf("IdleTTL 1.5s → %d ticks (want 2), jitter %v (want 1)", c.ttlTicks, c.policy.backoff.jitter)
	}
}

func TestNewTaskCacheRejects(t *testing.T) {
	reg := (&registrar{}).Register
	for _, tc := range []struct {
		name string
		reg  RegisterFunc
		opts CacheOptions
		want string
	}{
		{"nil register", nil, CacheOptions{}, "nil RegisterFunc"},
		{"negative capacity", reg, CacheOptions{Capacity: -1}, "Capacity"},
		{"negative timeout", reg, CacheOptions{Timeout: -time.Second}, "Timeout"},
		{"negative initial", reg, CacheOptions{BackoffInitial: -time.Second}, "BackoffInitial"},
		{"negative max", reg, CacheOptions{BackoffMax: -time.Second}, "BackoffMax"},
		{"max below initial", reg, CacheOptions{BackoffInitial: 10 * time.Second, BackoffMax: time.Second}, "below BackoffInitial"},
		{"max below default initial", reg, CacheOptions{BackoffMax: time.Millisecond}, "below BackoffInitial"},
		{"jitter above one", reg, CacheOptions{BackoffJitter: 1.5}, "BackoffJitter"},
		{"jitter NaN", reg, CacheOptions{BackoffJitter: math.NaN()}, "BackoffJitter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.reg, tc.opts)
			if err == nil || c != nil {
				t.Fatalf("New = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A hit takes no lock and allocates nothing (behaviour 1).
func TestGetHitLockFreeNoAlloc(t *testing.T) {
	clk := newClock()
	reg := &registrar{}
	c := mustCache(t, reg.Register, testOptions(clk))
	ctx := context.Background()
	want, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}

	// With the cache's only mutex held elsewhere, a hit still returns.
	c.mu.Lock()
	done := getAsync(c, ctx, "k")
	r := recvResult(t, done, "Get on a hit while c.mu is held")
	c.mu.Unlock()
	if r.err != nil || r.task != want {
		t.Fatalf("hit under held lock = %v, %v", r.task, r.err)
	}

	allocs := testing.AllocsPerRun(1000, func() {
		if got, err := c.Get(ctx, "k"); got != want || err != nil {
			panic("miss")
		}
	})
	if allocs != 0 {
		t.Errorf("Get on a hit allocates %v times, want 0", allocs)
	}

	// Repeated hits within one second leave the recency word unchanged (no
	// store, so no cache-line write); a new second updates it once.
	before := want.used.Load()
	for range 100 {
		_, _ = c.Get(ctx, "k")
	}
	if after := want.used.Load(); after != before || after&1 == 0 {
		t.Errorf("recency word changed within a second: %b → %b", before, after)
	}
	clk.Advance(time.Second)
	_, _ = c.Get(ctx, "k")
	if after := want.used.Load(); after != (1<<1 | 1) {
		t.Errorf("recency word after one second = %b, want tick 1 with reference bit", after)
	}
	if reg.total.Load() != 1 {
		t.Errorf("registrations = %d, want 1", reg.total.Load())
	}
}

// 1,000 concurrent Gets on one new key: one registration, one *Task
// (behaviour 2), whether callers can cancel (DoChan path) or not (Do path).
func TestStampedeOneKey(t *testing.T) {
	for _, cancellable := range []bool{true, false} {
		t.Run(fmt.Sprintf("cancellable=%v", cancellable), func(t *testing.T) {
			const n = 1000
			reg := &registrar{started: make(chan string, n), release: make(chan struct{})}
			c := mustCache(t, reg.Register, testOptions(newClock()))
			joined := countWaiters(c, n)
			ctx := context.Background()
			if cancellable {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}

			results := make(chan result, n)
			for range n {
				go func() {
					tk, err := c.Get(ctx, "thread-1")
					results <- result{tk, err}
				}()
			}
			recvN(t, joined, n, "Gets joined the flight")
			recvN(t, reg.started, 1, "registrations started")
			close(reg.release)

			var first *Task
			for range n {
				r := recvResult(t, results, "a stampeding Get")
				if r.err != nil {
					t.Fatalf("Get: %v", r.err)
				}
				if first == nil {
					first = r.task
				}
				if r.task != first {
					t.Fatalf("two different tasks for one key: %v and %v", first, r.task)
				}
			}
			if got := reg.total.Load(); got != 1 {
				t.Errorf("RegisterFunc calls = %d, want 1", got)
			}
			if first.ID() != "thread-1#1" || first.Key() != "thread-1" {
				t.Errorf("task = %v", first)
			}
			wantStats(t, c, CacheStats{Registrations: 1})
		})
	}
}

// 200 keys × 5 concurrent Gets: one registration per key, each its own id.
func TestStampedeDistinctKeys(t *testing.T) {
	const keys, per = 200, 5
	reg := &registrar{started: make(chan string, keys), release: make(chan struct{})}
	c := mustCache(t, reg.Register, testOptions(newClock()))
	joined := countWaiters(c, keys*per)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type keyed struct {
		key string
		result
	}
	results := make(chan keyed, keys*per)
	for k := range keys {
		key := "thread-" + strconv.Itoa(k)
		for range per {
			go func() {
				tk, err := c.Get(ctx, key)
				results <- keyed{key, result{tk, err}}
			}()
		}
	}
	recvN(t, joined, keys*per, "Gets joined flights")
	// Every key's registration runs at the same time: keys are independent.
	recvN(t, reg.started, keys, "concurrent registrations")
	close(reg.release)

	seen := map[string]*Task{}
	timeout := time.After(safety)
	for range keys * per {
		var r keyed
		select {
		case r = <-results:
		case <-timeout:
			t.Fatal("Gets did not return")
		}
		if r.err != nil {
			t.Fatalf("Get(%s): %v", r.key, r.err)
		}
		if r.task.Key() != r.key || r.task.ID() != r.key+"#1" {
			t.Fatalf("Get(%s) = %v", r.key, r.task)
		}
		if prev, ok := seen[r.key]; ok && prev != r.task {
			t.Fatalf("two tasks for %s", r.key)
		}
		seen[r.key] = r.task
	}
	if got := reg.total.Load(); got != keys {
		t.Errorf("RegisterFunc calls = %d, want %d", got, keys)
	}
	for k := range keys {
		if n := reg.calls("thread-" + strconv.Itoa(k)); n != 1 {
			t.Fatalf("thread-%d registered %d times", k, n)
		}
	}
	if c.Len() != keys {
		t.Errorf("Len = %d, want %d", c.Len(), keys)
	}
}

type traceKey struct{}

// A waiter whose context ends leaves at once with its context's error; the
// shared registration carries on, detached but bounded, for the others
// (behaviour 3). Both orders.
func TestCancellationSplit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cancelLeader bool
		leaderFixed  bool // the leader's context cannot be canceled: the flight runs on its goroutine
	}{
		{name: "leader canceled first", cancelLeader: true},
		{name: "follower canceled first"},
		{name: "follower canceled, leader not cancellable", leaderFixed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := &registrar{started: make(chan string, 1), release: make(chan struct{})}
			opts := testOptions(newClock())
			opts.Timeout = time.Hour
			c := mustCache(t, reg.Register, opts)
			joined := countWaiters(c, 2)

			leaderCtx := context.WithValue(context.Background(), traceKey{}, "trace-1")
			cancelL := context.CancelFunc(func() {})
			if !tc.leaderFixed {
				leaderCtx, cancelL = context.WithCancel(leaderCtx)
			}
			defer cancelL()
			followerCtx, cancelF := context.WithCancel(context.Background())
			defer cancelF()

			leader := getAsync(c, leaderCtx, "k")
			recvN(t, reg.started, 1, "leader's registration")
			recvN(t, joined, 1, "leader waiting")
			follower := getAsync(c, followerCtx, "k")
			recvN(t, joined, 1, "follower waiting")

			canceled, survivor := leader, follower
			if tc.cancelLeader {
				cancelL()
			} else {
				canceled, survivor = follower, leader
				cancelF()
			}
			r := recvResult(t, canceled, "canceled waiter")
			if r.task != nil || !errors.Is(r.err, context.Canceled) {
				t.Fatalf("canceled waiter got %v, %v; want context.Canceled", r.task, r.err)
			}
			select {
			case r := <-survivor:
				t.Fatalf("the other waiter returned early: %v, %v", r.task, r.err)
			default:
			}

			reg.mu.Lock()
			regCtx := reg.ctxs[0]
			reg.mu.Unlock()
			if regCtx.Err() != nil {
				t.Fatalf("registration context ended with a waiter: %v", regCtx.Err())
			}
			if v := regCtx.Value(traceKey{}); v != "trace-1" {
				t.Errorf("registration context lost the leader's values: %v", v)
			}
			if dl, ok := regCtx.Deadline(); !ok || time.Until(dl) > time.Hour {
				t.Errorf("registration context deadline = %v, %v; want the cache timeout", dl, ok)
			}

			close(reg.release)
			r = recvResult(t, survivor, "surviving waiter")
			if r.err != nil || r.task.ID() != "k#1" {
				t.Fatalf("surviving waiter got %v, %v", r.task, r.err)
			}
			if tk, err := c.Get(context.Background(), "k"); err != nil || tk != r.task {
				t.Errorf("result not cached: %v, %v", tk, err)
			}
			if reg.total.Load() != 1 {
				t.Errorf("RegisterFunc calls = %d, want 1", reg.total.Load())
			}
			wantStats(t, c, CacheStats{Registrations: 1})
		})
	}
}

func TestCancellationDeadline(t *testing.T) {
	reg := &registrar{started: make(chan string, 1), release: make(chan struct{})}
	c := mustCache(t, reg.Register, testOptions(newClock()))

	// A context already past its deadline does not start a registration.
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if tk, err := c.Get(past, "k"); tk != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get(expired ctx) = %v, %v", tk, err)
	}
	if reg.total.Load() != 0 {
		t.Fatalf("an expired caller started a registration")
	}

	// A waiter whose deadline passes mid-flight gets DeadlineExceeded.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	r := recvResult(t, getAsync(c, short, "k"), "waiter with a deadline")
	if r.task != nil || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("waiter got %v, %v; want DeadlineExceeded", r.task, r.err)
	}
	recvN(t, reg.started, 1, "registration")
	close(reg.release)
	if tk, err := c.Get(context.Background(), "k"); err != nil || tk.ID() != "k#1" {
		t.Fatalf("after release: %v, %v", tk, err)
	}
}

// A RegisterFunc that only returns when its context ends fails after Timeout
// (on the real clock); after the backoff the next Get starts a fresh attempt.
func TestRegistrationTimeout(t *testing.T) {
	clk := newClock()
	var calls atomic.Int32
	reg := func(ctx context.Context, key string) (string, error) {
		if calls.Add(1) == 1 {
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "fresh", nil
	}
	opts := testOptions(clk)
	opts.Timeout = 50 * time.Millisecond
	c := mustCache(t, reg, opts)

	start := time.Now()
	tk, err := c.Get(context.Background(), "k")
	elapsed := time.Since(start)
	var rerr *AttemptError
	if tk != nil || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &rerr) {
		t.Fatalf("Get = %v, %v; want a AttemptError wrapping DeadlineExceeded", tk, err)
	}
	if !rerr.Temporary() || rerr.Key != "k" || !strings.Contains(err.Error(), "timed out after 50ms") {
		t.Errorf("timeout error: temporary=%v key=%q msg=%q", rerr.Temporary(), rerr.Key, err)
	}
	if elapsed < 50*time.Millisecond || elapsed > safety {
		t.Errorf("attempt ended after %v, want the 50ms timeout", elapsed)
	}

	var berr *BackoffError
	if _, err := c.Get(context.Background(), "k"); !errors.As(err, &berr) {
		t.Fatalf("Get during backoff = %v, want BackoffError", err)
	}
	clk.Advance(time.Second)
	if tk, err := c.Get(context.Background(), "k"); err != nil || tk.ID() != "fresh" {
		t.Fatalf("Get after backoff = %v, %v", tk, err)
	}
	if calls.Load() != 2 {
		t.Errorf("RegisterFunc calls = %d, want 2", calls.Load())
	}
	wantStats(t, c, CacheStats{Registrations: 1, Failures: 1, BackoffRejections: 1})
}

// Concurrent callers share one failure; the key then backs off while other
// keys are served; after the deadline exactly one new call (behaviour 4).
func TestFailureSharedThenBackoff(t *testing.T) {
	const n = 50
	clk := newClock()
	reg := &registrar{started: make(chan string, n), release: make(chan struct{})}
	reg.fail.Store(true)
	c := mustCache(t, reg.Register, testOptions(clk))
	joined := countWaiters(c, 2*n)
	// A cancellable context takes the DoChan path, where onWait fires only
	// once the caller has joined the flight.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	results := make(chan result, n)
	for range n {
		go func() {
			tk, err := c.Get(ctx, "bad")
			results <- result{tk, err}
		}()
	}
	recvN(t, joined, n, "Gets joined the failing flight")
	recvN(t, reg.started, 1, "registration")
	close(reg.release)
	var shared error
	for range n {
		r := recvResult(t, results, "a failing Get")
		var rerr *AttemptError
		if r.task != nil || !errors.Is(r.err, errBoom) || !errors.As(r.err, &rerr) || rerr.Key != "bad" {
			t.Fatalf("Get = %v, %v; want AttemptError(boom)", r.task, r.err)
		}
		if shared == nil {
			shared = r.err
		} else if r.err != shared {
			t.Fatalf("callers of one attempt got different errors")
		}
	}
	if reg.total.Load() != 1 {
		t.Fatalf("RegisterFunc calls = %d, want 1 for %d concurrent callers", reg.total.Load(), n)
	}
	if _, isTask := c.peek("bad").(*Task); isTask {
		t.Fatal("a failed registration was cached as a task")
	}

	wantUntil := clk.Now().Add(750 * time.Millisecond) // 1s base, 50 % jitter at r = 0.5
	for _, step := range []time.Duration{0, 749 * time.Millisecond} {
		clk.Advance(step)
		tk, err := c.Get(ctx, "bad")
		var berr *BackoffError
		if tk != nil || !errors.As(err, &berr) {
			t.Fatalf("Get in backoff = %v, %v; want BackoffError", tk, err)
		}
		// boom is not temporary, so neither is the backoff it caused.
		if !berr.Until.Equal(wantUntil) || berr.Key != "bad" || berr.Failures != 1 || berr.Temporary() || !errors.Is(err, errBoom) {
			t.Errorf("BackoffError = %+v", berr)
		}
	}
	// Other keys are unaffected.
	reg.fail.Store(false)
	if tk, err := c.Get(ctx, "good"); err != nil || tk.ID() != "good#1" {
		t.Fatalf("Get(good) during another key's backoff = %v, %v", tk, err)
	}
	if reg.calls("bad") != 1 {
		t.Fatalf("backoff let a call through: %d", reg.calls("bad"))
	}

	clk.Advance(time.Millisecond) // reaches the deadline
	results2 := make(chan result, n)
	for range n {
		go func() {
			tk, err := c.Get(ctx, "bad")
			results2 <- result{tk, err}
		}()
	}
	var got *Task
	for range n {
		r := recvResult(t, results2, "Get after the deadline")
		if r.err != nil {
			t.Fatalf("Get after the deadline: %v", r.err)
		}
		if got == nil {
			got = r.task
		} else if got != r.task {
			t.Fatal("two tasks after the deadline")
		}
	}
	if got.ID() != "bad#2" || reg.calls("bad") != 2 {
		t.Fatalf("after the deadline: task %v, calls %d; want bad#2 and 2", got, reg.calls("bad"))
	}
	wantStats(t, c, CacheStats{Registrations: 2, Failures: 1, BackoffRejections: 2})
}

// The wait doubles with each consecutive failure up to BackoffMax, jittered
// by Rand, and starts over after a success.
func TestBackoffGrowsAndResets(t *testing.T) {
	clk := newClock()
	reg := &registrar{}
	reg.fail.Store(true)
	rnd := []float64{0, 0.5, 0.999, 0.5, 0, 0.25}
	var draws atomic.Int32
	opts := testOptions(clk)
	opts.Rand = func() float64 { return rnd[int(draws.Add(1)-1)%len(rnd)] }
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()

	// base 1, 2, 4, 8, 8, 8 s; wait = base·(1 − 0.5·r)
	want := []time.Duration{
		time.Second,
		1500 * time.Millisecond,
		4*time.Second - time.Duration(float64(4*time.Second)*0.5*0.999),
		6 * time.Second,
		8 * time.Second,
		7 * time.Second,
	}
	for i, w := range want {
		if _, err := c.Get(ctx, "k"); !errors.Is(err, errBoom) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		_, err := c.Get(ctx, "k")
		var berr *BackoffError
		if !errors.As(err, &berr) {
			t.Fatalf("after failure %d: %v, want BackoffError", i+1, err)
		}
		if got := berr.Until.Sub(clk.Now()); got != w || berr.Failures != i+1 {
			t.Errorf("failure %d: wait %v (failures %d), want %v", i+1, got, berr.Failures, w)
		}
		clk.Advance(w)
	}
	reg.fail.Store(false)
	tk, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Invalidate(tk) {
		t.Fatal("Invalidate(current) = false")
	}
	reg.fail.Store(true)
	_, _ = c.Get(ctx, "k")
	_, err = c.Get(ctx, "k")
	var berr *BackoffError
	if !errors.As(err, &berr) || berr.Failures != 1 || berr.Until.Sub(clk.Now()) != time.Second {
		t.Errorf("backoff after a success did not reset: %v", err)
	}
	if reg.total.Load() != int64(len(want))+2 {
		t.Errorf("RegisterFunc calls = %d, want %d", reg.total.Load(), len(want)+2)
	}
}

// Backoff state lives in the bounded ring: it is evicted under pressure and
// expires IdleTTL after its deadline.
func TestBackoffStateBounded(t *testing.T) {
	clk := newClock()
	reg := &registrar{}
	reg.fail.Store(true)
	opts := testOptions(clk)
	opts.Capacity = 10
	opts.IdleTTL = time.Minute
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()

	for i := range 100 {
		_, _ = c.Get(ctx, "bad-"+strconv.Itoa(i))
		if c.Len() > 10 {
			t.Fatalf("Len = %d after %d failing keys, capacity 10", c.Len(), i+1)
		}
	}
	if st := c.Stats(); st.Failures != 100 || st.Evictions != 90 {
		t.Errorf("Stats = %+v, want 100 failures and 90 evictions", st)
	}

	// Everything expires: one insert's sweep and the eviction hand clear them.
	clk.Advance(opts.BackoffMax + time.Minute + 2*time.Second)
	reg.fail.Store(false)
	for i := range 5 {
		_, _ = c.Get(ctx, "ok-"+strconv.Itoa(i))
	}
	if c.Len() != 5 {
		t.Errorf("Len = %d after expired backoff entries were swept, want 5", c.Len())
	}
	if st := c.Stats(); st.Expirations != 10 {
		t.Errorf("Expirations = %d, want 10", st.Expirations)
	}
	// The dropped backoff state starts over.
	reg.fail.Store(true)
	_, _ = c.Get(ctx, "bad-99")
	_, err := c.Get(ctx, "bad-99")
	var berr *BackoffError
	if !errors.As(err, &berr) || berr.Failures != 1 {
		t.Errorf("backoff of an expired key: %v", err)
	}
}

// A panic in RegisterFunc is recovered inside the flight, reported to every
// waiter without the panic value, and the key recovers after its backoff
// (behaviour 5).
func TestRegisterPanicRecovered(t *testing.T) {
	clk := newClock()
	var calls atomic.Int32
	release := make(chan struct{})
	reg := func(ctx context.Context, key string) (string, error) {
		if calls.Add(1) == 1 {
			<-release
			panic("secret-token-xyz")
		}
		return "after-panic", nil
	}
	c := mustCache(t, reg, testOptions(clk))
	joined := countWaiters(c, 2)
	ctx, cancel := context.WithCancel(context.Background()) // DoChan path: onWait means joined
	defer cancel()
	a := getAsync(c, ctx, "k")
	b := getAsync(c, ctx, "k")
	recvN(t, joined, 2, "waiters")
	close(release)
	for _, ch := range []<-chan result{a, b} {
		r := recvResult(t, ch, "waiter of a panicking flight")
		var rerr *AttemptError
		if r.task != nil || !errors.Is(r.err, ErrRegistrationPanic) || !errors.As(r.err, &rerr) {
			t.Fatalf("got %v, %v; want ErrRegistrationPanic", r.task, r.err)
		}
		if rerr.Temporary() {
			t.Error("a panic reported as temporary")
		}
		for _, s := range []string{r.err.Error(), fmt.Sprintf("%+v", r.err), fmt.Sprintf("%#v", r.err)} {
			if strings.Contains(s, "secret-token-xyz") {
				t.Fatalf("panic value leaked into the error: %s", s)
			}
		}
		if !strings.Contains(r.err.Error(), "registration panicked") {
			t.Errorf("error %q does not say what happened", r.err)
		}
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrRegistrationPanic) {
		t.Fatalf("Get during backoff after panic: %v", err)
	}
	clk.Advance(time.Second)
	if tk, err := c.Get(ctx, "k"); err != nil || tk.ID() != "after-panic" {
		t.Fatalf("Get after backoff = %v, %v", tk, err)
	}
	wantStats(t, c, CacheStats{Registrations: 1, Failures: 1, Panics: 1, BackoffRejections: 1})
}

func TestEmptyTaskIDIsAFailure(t *testing.T) {
	c := mustCache(t, func(context.Context, string) (string, error) { return "", nil }, testOptions(newClock()))
	if tk, err := c.Get(context.Background(), "k"); tk != nil || !errors.Is(err, errEmptyTaskID) {
		t.Fatalf("Get = %v, %v; want errEmptyTaskID", tk, err)
	}
	if _, isTask := c.peek("k").(*Task); isTask {
		t.Fatal("an empty id was cached")
	}
}

// 100,000 distinct keys through a cache of 1,000 (behaviour 6), also under
// the race detector, where it takes a few seconds.
func TestCapacityBound(t *testing.T) {
	const capacity = 1000
	const keys = 100_000
	reg := &registrar{}
	opts := testOptions(newClock())
	opts.Capacity = capacity
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()
	for i := range keys {
		key := "k" + strconv.Itoa(i)
		tk, err := c.Get(ctx, key)
		if err != nil || tk.Key() != key {
			t.Fatalf("Get(%s) = %v, %v", key, tk, err)
		}
		if i%1000 == 999 && c.Len() > capacity {
			t.Fatalf("Len = %d after %d keys", c.Len(), i+1)
		}
	}
	if c.Len() != capacity {
		t.Errorf("Len = %d, want %d", c.Len(), capacity)
	}
	wantStats(t, c, CacheStats{Registrations: uint64(keys), Evictions: uint64(keys - capacity)})
	if tk, err := c.Get(ctx, "k0"); err != nil || tk.ID() != "k0#2" {
		t.Errorf("evicted key: Get = %v, %v; want a new registration", tk, err)
	}
	if _, ok := c.peek("k0").(*Task); !ok {
		t.Error("re-registered key not cached")
	}
	c.checkInvariants(t)
}

// CLOCK approximates LRU: a key used between every insert survives any
// number of sweeps, while a key never used again is evicted.
func TestRecentlyUsedSurvivesEviction(t *testing.T) {
	const capacity = 100
	reg := &registrar{}
	opts := testOptions(newClock())
	opts.Capacity = capacity
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()
	hot, err := c.Get(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "cold"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 * capacity {
		if tk, err := c.Get(ctx, "hot"); err != nil || tk != hot {
			t.Fatalf("hot key lost after %d inserts: %v, %v", i, tk, err)
		}
		if _, err := c.Get(ctx, "fill-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if reg.calls("hot") != 1 {
		t.Errorf("hot key registered %d times", reg.calls("hot"))
	}
	if _, err := c.Get(ctx, "cold"); err != nil || reg.calls("cold") != 2 {
		t.Errorf("cold key was not evicted (calls %d)", reg.calls("cold"))
	}
}

// Idle entries expire: a Get after IdleTTL re-registers, and inserts sweep
// expired entries so Len drops even below capacity.
func TestIdleExpiry(t *testing.T) {
	clk := newClock()
	reg := &registrar{}
	opts := testOptions(clk)
	opts.IdleTTL = 10 * time.Minute
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()

	first, _ := c.Get(ctx, "k")
	clk.Advance(10 * time.Minute) // idle exactly IdleTTL: still live
	if tk, _ := c.Get(ctx, "k"); tk != first {
		t.Fatalf("entry expired at IdleTTL: %v", tk)
	}
	clk.Advance(10*time.Minute + time.Second) // idle past IdleTTL
	tk, err := c.Get(ctx, "k")
	if err != nil || tk == first || tk.ID() != "k#2" {
		t.Fatalf("Get after IdleTTL = %v, %v; want a new registration", tk, err)
	}
	if tk2, _ := c.Get(ctx, "k"); tk2 != tk {
		t.Fatal("re-registered task not cached")
	}
	wantStats(t, c, CacheStats{Registrations: 2, Expirations: 1})

	const old = 50
	for i := range old {
		_, _ = c.Get(ctx, "old-"+strconv.Itoa(i))
	}
	if c.Len() != old+1 {
		t.Fatalf("Len = %d, want %d", c.Len(), old+1)
	}
	clk.Advance(11 * time.Minute)
	for i := range old {
		_, _ = c.Get(ctx, "new-"+strconv.Itoa(i))
	}
	if c.Len() != old {
		t.Errorf("Len = %d after sweeping expired entries, want %d", c.Len(), old)
	}
	if st := c.Stats(); st.Expirations != 1+old+1 || st.Evictions != 0 {
		t.Errorf("Stats = %+v, want %d expirations and no evictions", st, old+2)
	}
}

// Concurrent Gets (and Invalidates) on more keys than the cache holds: every
// task returned belongs to the key asked for.
func TestEvictionNeverCrossesKeys(t *testing.T) {
	const workers, ops, keys = 8, 600, 64
	reg := &registrar{}
	opts := testOptions(newClock())
	opts.Capacity = 16
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range ops {
				key := "thread-" + strconv.Itoa(rng.IntN(keys))
				tk, err := c.Get(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				if tk.Key() != key || !strings.HasPrefix(tk.ID(), key+"#") {
					errs <- fmt.Errorf("Get(%s) returned %v", key, tk)
					return
				}
				if rng.IntN(10) == 0 {
					c.Invalidate(tk)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.Len() > 16 {
		t.Errorf("Len = %d > capacity", c.Len())
	}
	st := c.Stats()
	if st.Registrations != uint64(reg.total.Load()) || st.Evictions == 0 {
		t.Errorf("Stats = %+v with %d calls", st, reg.total.Load())
	}
	c.checkInvariants(t)
}

// Invalidate is generation-safe (behaviour 7).
func TestInvalidate(t *testing.T) {
	reg := &registrar{}
	opts := testOptions(newClock())
	opts.Capacity = 2
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()
	if c.Invalidate(nil) {
		t.Error("Invalidate(nil) = true")
	}
	t1, _ := c.Get(ctx, "k")
	if !c.Invalidate(t1) {
		t.Fatal("Invalidate(current) = false")
	}
	if c.Invalidate(t1) || c.Len() != 0 {
		t.Fatalf("second Invalidate = true or Len %d", c.Len())
	}
	t2, _ := c.Get(ctx, "k")
	if t2 == t1 || t2.ID() != "k#2" {
		t.Fatalf("Get after Invalidate = %v", t2)
	}
	if c.Invalidate(t1) {
		t.Fatal("stale Invalidate removed the newer task")
	}
	if tk, _ := c.Get(ctx, "k"); tk != t2 {
		t.Fatalf("stale Invalidate changed the cached task to %v", tk)
	}
	// A task already evicted cannot be invalidated. t2 was just used, so
	// the hand spares it once: it goes on the second eviction.
	for _, k := range []string{"a", "b", "c"} {
		_, _ = c.Get(ctx, k)
	}
	if _, stillCached := c.peek("k").(*Task); stillCached {
		t.Fatal("k not evicted")
	}
	if c.Invalidate(t2) {
		t.Error("Invalidate of an evicted task = true")
	}
	wantStats(t, c, CacheStats{Registrations: 5, Invalidations: 1, Evictions: 2})
}

// 50 requests rejected with the same task: one invalidation, one new
// registration, one new task for all.
func TestConcurrent401(t *testing.T) {
	const n = 50
	reg := &registrar{}
	c := mustCache(t, reg.Register, testOptions(newClock()))
	ctx := context.Background()
	t1, _ := c.Get(ctx, "thread")

	start := make(chan struct{})
	var removed atomic.Int32
	results := make(chan result, n)
	for range n {
		go func() {
			<-start
			if c.Invalidate(t1) {
				removed.Add(1)
			}
			tk, err := c.Get(ctx, "thread")
			results <- result{tk, err}
		}()
	}
	close(start)
	var t2 *Task
	for range n {
		r := recvResult(t, results, "Get after 401")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if t2 == nil {
			t2 = r.task
		} else if r.task != t2 {
			t.Fatal("concurrent 401s produced different tasks")
		}
	}
	if t2 == t1 || removed.Load() != 1 || reg.total.Load() != 2 {
		t.Fatalf("new task %v, %d removals, %d registrations; want new, 1, 2", t2, removed.Load(), reg.total.Load())
	}
	wantStats(t, c, CacheStats{Registrations: 2, Invalidations: 1})
}

// Task formats as key and id only: a cached assertion never shows.
func TestTaskFormatting(t *testing.T) {
	tk := &Task{node: node{key: "thread-1"}, id: "task-123"}
	tk.assertion.Store(&signedAssertion{second: 1, header: "AgentAssertion SECRETSECRET"})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("task", "task", tk)
	outs := []string{
		fmt.Sprint(tk), fmt.Sprintf("%v|%+v|%#v|%s|%q", tk, tk, tk, tk, tk), tk.String(), tk.GoString(), buf.String(),
	}
	for _, s := range outs {
		if strings.Contains(s, "SECRET") {
			t.Errorf("assertion leaked: %s", s)
		}
		if !strings.Contains(s, "thread-1") || !strings.Contains(s, "task-123") {
			t.Errorf("output lacks key or id: %s", s)
		}
	}
	var nilTask *Task
	if s := fmt.Sprintf("%v", nilTask); s != "taskcache.Task(nil)" {
		t.Errorf("nil task prints %q", s)
	}
}

// peek returns the key's *Task or *backoffState, or nil, for white-box
// assertions.
func (c *Cache) peek(key string) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tasks.Load().find(c.seed, key); t != nil {
		return t
	}
	if b := c.failing[key]; b != nil {
		return b
	}
	return nil
}

// checkInvariants verifies that the ring, the task table and the failing map
// describe the same entries.
func (c *Cache) checkInvariants(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	tasks, failing := 0, 0
	for i, n := range c.ring {
		if int(n.slot) != i {
			t.Fatalf("ring[%d] (%s) records slot %d", i, n.key, n.slot)
		}
		if n.failed {
			failing++
			if b := c.failing[n.key]; b == nil || &b.node != n {
				t.Fatalf("ring[%d] (%s) is not the failing map's entry", i, n.key)
			}
			if c.tasks.Load().find(c.seed, n.key) != nil {
				t.Fatalf("%s is both failing and cached", n.key)
			}
		} else {
			tasks++
			if tk := c.tasks.Load().find(c.seed, n.key); tk == nil || &tk.node != n {
				t.Fatalf("ring[%d] (%s) is not the table's task", i, n.key)
			}
		}
	}
	if failing != len(c.failing) {
		t.Fatalf("failing map holds %d keys, ring %d", len(c.failing), failing)
	}
	tb := c.tasks.Load()
	if tb == nil {
		if tasks != 0 {
			t.Fatalf("no table but %d tasks in the ring", tasks)
		}
		return
	}
	live, dead := 0, 0
	for i := range tb.slots {
		switch tk := tb.slots[i].Load(); {
		case tk == tombstone:
			dead++
		case tk != nil:
			live++
		}
	}
	if live != tb.live || dead != tb.dead || live != tasks {
		t.Fatalf("table counts live %d/%d dead %d/%d, ring has %d tasks", live, tb.live, dead, tb.dead, tasks)
	}
	if (tb.live+tb.dead)*4 > len(tb.slots)*3 {
		t.Fatalf("table over-full: %d+%d of %d", tb.live, tb.dead, len(tb.slots))
	}
}

// The state machine, in the spirit of AWS's shared refresh vectors: each
// scenario is a script of events and the exact calls, errors and cached ids
// they must produce. Options: BackoffInitial 1s, BackoffMax 4s, jitter 50 %
// at r = 0.5 (waits 750ms, 1.5s, 3s, 3s…).
//
//	get K ok => ID        exactly one registration, which succeeds with ID
//	get K fail => fail    exactly one registration, which fails
//	get K => ID           no registration; the cached task ID
//	get K => backoff D    no registration; BackoffError due in D
//	advance D             move the fake clock
//	invalidate ID => B    Invalidate(the task that had ID) reports B
//	len => N              Len() is N
func TestStateMachine(t *testing.T) {
	for _, sc := range []struct {
		name     string
		capacity int
		ttl      time.Duration
		script   []string
	}{
		{name: "hit after one registration", script: []string{
			"get a ok => a#1", "get a => a#1", "get a => a#1", "len => 1",
		}},
		{name: "failure backs off until the deadline", script: []string{
			"get a fail => fail", "get a => backoff 750ms", "advance 749ms", "get a => backoff 1ms",
			"advance 1ms", "get a ok => a#2", "get a => a#2", "len => 1",
		}},
		{name: "backoff grows to the cap and resets after success", script: []string{
			"get a fail => fail", "get a => backoff 750ms", "advance 750ms",
			"get a fail => fail", "get a => backoff 1.5s", "advance 1.5s",
			"get a fail => fail", "get a => backoff 3s", "advance 3s",
			"get a fail => fail", "get a => backoff 3s", "advance 3s",
			"get a ok => a#5", "invalidate a#5 => true",
			"get a fail => fail", "get a => backoff 750ms",
		}},
		{name: "keys are independent", script: []string{
			"get a fail => fail", "get b ok => b#1", "get a => backoff 750ms", "get b => b#1",
			"advance 750ms", "get a ok => a#2", "get b => b#1", "len => 2",
		}},
		{name: "stale invalidate is a no-op", script: []string{
			"get a ok => a#1", "invalidate a#1 => true", "invalidate a#1 => false", "len => 0",
			"get a ok => a#2", "invalidate a#1 => false", "get a => a#2",
			"invalidate a#2 => true", "len => 0",
		}},
		{name: "invalidate has nothing to remove during backoff", script: []string{
			"get a ok => a#1", "invalidate a#1 => true", "get a fail => fail",
			"invalidate a#1 => false", "get a => backoff 750ms", "len => 1",
		}},
		{name: "idle TTL", ttl: 10 * time.Minute, script: []string{
			"get a ok => a#1", "advance 10m", "get a => a#1", "advance 10m", "get a => a#1",
			"advance 10m1s", "get a ok => a#2", "get a => a#2",
		}},
		{name: "failure after expiry backs off", ttl: 10 * time.Minute, script: []string{
			"get a ok => a#1", "advance 10m1s", "get a fail => fail", "get a => backoff 750ms",
			"advance 750ms", "get a ok => a#3",
		}},
		{name: "capacity evicts the key not used since the hand passed", capacity: 2, script: []string{
			"get a ok => a#1", "get b ok => b#1", "get a => a#1", "get c ok => c#1",
			"get a => a#1", "get b ok => b#2", "get a => a#1", "len => 2",
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			clk := newClock()
			reg := &registrar{}
			c := mustCache(t, reg.Register, CacheOptions{
				Capacity: sc.capacity, IdleTTL: sc.ttl, Now: clk.Now,
				Rand:           func() float64 { return 0.5 },
				BackoffInitial: time.Second, BackoffMax: 4 * time.Second,
			})
			ctx := context.Background()
			tasks := map[string]*Task{}
			for i, line := range sc.script {
				f := strings.Fields(line)
				fail := func(format string, args ...any) {
					t.Helper()
					t.Fatalf("step %d %q: %s", i+1, line, fmt.Sprintf(format, args...))
				}
				switch f[0] {
				case "advance":
					d, err := time.ParseDuration(f[1])
					if err != nil {
						fail("%v", err)
					}
					clk.Advance(d)
				case "len":
					if got, _ := strconv.Atoi(f[2]); c.Len() != got {
						fail("Len = %d", c.Len())
					}
				case "invalidate":
					if got := c.Invalidate(tasks[f[1]]); strconv.FormatBool(got) != f[3] {
						fail("Invalidate = %v", got)
					}
				case "get":
					key, expectCall := f[1], f[2] != "=>"
					reg.fail.Store(f[2] == "fail")
					before := reg.total.Load()
					tk, err := c.Get(ctx, key)
					if calls := reg.total.Load() - before; calls != map[bool]int64{true: 1, false: 0}[expectCall] {
						fail("%d registration calls", calls)
					}
					want := f[len(f)-1]
					var berr *BackoffError
					switch {
					case f[len(f)-2] == "backoff":
						d, _ := time.ParseDuration(want)
						if !errors.As(err, &berr) || berr.Until.Sub(clk.Now()) != d {
							fail("got %v, %v; want backoff due in %v", tk, err, d)
						}
					case want == "fail":
						var rerr *AttemptError
						if tk != nil || !errors.Is(err, errBoom) || !errors.As(err, &rerr) || errors.As(err, &berr) {
							fail("got %v, %v; want a AttemptError", tk, err)
						}
					default:
						if err != nil || tk.ID() != want || tk.Key() != key {
							fail("got %v, %v; want %s", tk, err, want)
						}
						tasks[want] = tk
					}
				default:
					fail("bad step")
				}
			}
			st := c.Stats()
			if st.Registrations+st.Failures != uint64(reg.total.Load()) {
				t.Errorf("Stats %+v disagree with %d calls", st, reg.total.Load())
			}
		})
	}
}

func BenchmarkTaskCacheHit(b *testing.B) {
	const keys = 1024
	c := mustCache(b, (&registrar{}).Register, CacheOptions{})
	ctx := context.Background()
	names := make([]string, keys)
	for i := range names {
		names[i] = "thread-" + strconv.Itoa(i)
		if _, err := c.Get(ctx, names[i]); err != nil {
			b.Fatal(err)
		}
	}
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(97))
		for pb.Next() {
			if _, err := c.Get(ctx, names[i%keys]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkTaskCacheMiss(b *testing.B) {
	c := mustCache(b, func(_ context.Context, key string) (string, error) { return key, nil }, CacheOptions{Capacity: 4096})
	ctx := context.Background()
	names := make([]string, 1<<16)
	for i := range names {
		names[i] = "thread-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Get(ctx, names[i%len(names)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTaskCacheMemory reports the live heap per cached task at 100,000
// entries, excluding the key and id strings (allocated beforehand).
func BenchmarkTaskCacheMemory(b *testing.B) {
	const n = 100_000
	ids := make(map[string]string, n)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "thread-" + strconv.Itoa(i)
		ids[keys[i]] = "task-" + strconv.Itoa(i)
	}
	reg := func(_ context.Context, key string) (string, error) { return ids[key], nil }
	ctx := context.Background()
	var perEntry float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := mustCache(b, reg, CacheOptions{Capacity: n})
		for _, k := range keys {
			if _, err := c.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != n {
			b.Fatalf("Len = %d", c.Len())
		}
		perEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perEntry, "bytes/entry")
}

// The task table agrees with a plain map through random puts, replacements
// and deletes, across tombstone reuse and rebuilds.
func TestTableMatchesMap(t *testing.T) {
	seed := maphash.MakeSeed()
	rng := rand.New(rand.NewPCG(1, 2))
	var tb *table
	ref := map[string]*Task{}
	for step := range 20_000 {
		key := "k" + strconv.Itoa(rng.IntN(300))
		if rng.IntN(3) == 0 {
			tb.del(seed, key)
			delete(ref, key)
		} else {
			tk := &Task{node: node{key: key}, id: strconv.Itoa(step)}
			tb = tb.put(seed, tk)
			ref[key] = tk
		}
		if step%500 == 0 || step == 19_999 {
			for i := range 300 {
				k := "k" + strconv.Itoa(i)
				if got := tb.find(seed, k); got != ref[k] {
					t.Fatalf("step %d: find(%s) = %v, want %v", step, k, got, ref[k])
				}
			}
			if tb.live != len(ref) || (tb.live+tb.dead)*4 > len(tb.slots)*3 {
				t.Fatalf("step %d: live %d dead %d slots %d, map %d", step, tb.live, tb.dead, len(tb.slots), len(ref))
			}
		}
	}
	if tb.find(seed, "") != nil {
		t.Fatal("the empty key matched a tombstone")
	}
}

// Lock-free readers never miss a key that stays present while a writer
// churns other keys through the table (tombstones, reuse, rebuilds), and
// never see a task under another key.
func TestTableConcurrentReaders(t *testing.T) {
	seed := maphash.MakeSeed()
	var published atomic.Pointer[table]
	var tb *table
	stable := make([]*Task, 32)
	for i := range stable {
		stable[i] = &Task{node: node{key: "stable-" + strconv.Itoa(i)}, id: "s"}
		tb = tb.put(seed, stable[i])
	}
	published.Store(tb)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := stable[(i+r)%len(stable)]
				if got := published.Load().find(seed, want.key); got != want {
					errs <- fmt.Sprintf("reader missed %s: got %v", want.key, got)
					return
				}
				churn := "churn-" + strconv.Itoa(i%64)
				if got := published.Load().find(seed, churn); got != nil && got.key != churn {
					errs <- fmt.Sprintf("find(%s) returned %v", churn, got)
					return
				}
			}
		})
	}
	for i := range 20_000 { // the single writer
		key := "churn-" + strconv.Itoa(i%64)
		if i%3 == 2 {
			tb.del(seed, key)
		} else {
			tb = tb.put(seed, &Task{node: node{key: key}, id: strconv.Itoa(i)})
			published.Store(tb)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
