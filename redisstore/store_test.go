package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/redis/go-redis/v9"
)

// logRecorder is a slog.Handler that keeps every record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records start with level (e.g. "WARN").
func (l *logRecorder) count(level string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if strings.HasPrefix(r, level+" ") {
			n++
		}
	}
	return n
}

func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

const testOpTimeout = 2 * time.Second

func newStore(tb testing.TB, addr string, opts Options) *Store {
	tb.Helper()
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix(tb)
	}
	if opts.OpTimeout == 0 {
		// Generous, because the race detector and several replica processes
		// share a small CI machine; the outage tests exercise short timeouts.
		opts.OpTimeout = testOpTimeout
	}
	s, err := New(newClient(tb, addr), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fixedID registers by returning id and counting calls.
func fixedID(id string, calls *atomic.Int32) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		calls.Add(1)
		return id, nil
	}
}

// waitUntil polls cond, which observes another goroutine's progress
// through counters that have no channel, for at most limit.
func waitUntil(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestNewValidation(t *testing.T) {
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	noCtx := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noCtx.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   Options
		want   string
	}{
		{"nil client", nil, Options{}, "nil Redis client"},
		{"context timeouts off", noCtx, Options{}, "ContextTimeoutEnabled"},
		{"negative TTL", ok, Options{TTL: -1}, "TTL"},
		{"negative lock", ok, Options{LockTimeout: -1}, "LockTimeout"},
		{"negative poll", ok, Options{PollInterval: -1}, "PollInterval"},
		{"negative max poll", ok, Options{MaxPollInterval: -1}, "MaxPollInterval"},
		{"negative op timeout", ok, Options{OpTimeout: -1}, "OpTimeout"},
		{"max poll below poll", ok, Options{PollInterval: time.Second, MaxPollInterval: time.Millisecond}, "below PollInterval"},
		{"sub-millisecond TTL", ok, Options{TTL: time.Microsecond}, "millisecond"},
		{"lock not above op timeout", ok, Options{LockTimeout: time.Second, OpTimeout: time.Second}, "must exceed OpTimeout"},
		{"brace in prefix", ok, Options{Prefix: "x{y}:"}, "brace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.client, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	s, err := New(ok, Options{PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := s.opts
	if o.Prefix != DefaultPrefix || o.TTL != DefaultTTL || o.LockTimeout != DefaultLockTimeout ||
		o.OpTimeout != DefaultOpTimeout || o.PollInterval != time.Second || o.MaxPollInterval != time.Second {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if o.LockTimeout < taskcache.DefaultTimeout {
		t.Fatalf("default LockTimeout %v is shorter than the registration timeout %v", o.LockTimeout, taskcache.DefaultTimeout)
	}
}

func TestKeysAreHashedAndUnambiguous(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	s, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := s.keysFor(taskcache.StoreKey{RuntimeID: "rt-a", ExternalRef: "bc"})
	b := s.keysFor(taskcache.StoreKey{RuntimeID: "rt-ab", ExternalRef: "c"})
	if a.mapping == b.mapping {
		t.Fatal("different (runtime, thread) pairs share a key")
	}
	if !strings.HasPrefix(a.mapping, DefaultPrefix+"{") || !strings.HasSuffix(a.mapping, "}") || a.lock != a.mapping+":lock" {
		t.Fatalf("unexpected key layout %q / %q", a.mapping, a.lock)
	}
	odd := s.keysFor(taskcache.StoreKey{RuntimeID: "rt", ExternalRef: "thread {with} spaces\nand \u2028 more"})
	if strings.Contains(odd.mapping, "thread") || len(odd.mapping) != len(DefaultPrefix)+2+64 {
		t.Fatalf("thread key not hashed into a fixed-length key: %q", odd.mapping)
	}
}

// Concurrent Resolves of one thread on many replicas (stores with their
// own clients) register exactly once; everyone gets that task.
func TestFleetSingleFlight(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	const replicas = 8
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = newStore(t, addr, Options{Prefix: prefix, PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond})
	}
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-1"}
	release := make(chan struct{})
	var calls atomic.Int32
	register := func(ctx context.Context) (string, error) {
		n := calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return fmt.Sprintf("task-%d", n), nil
	}
	ids := make([]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { ids[i], errs[i] = s.Resolve(context.Background(), key, register) })
	}
	waitUntil(t, 5*time.Second, "the other replicas to wait", func() bool {
		var w uint64
		for _, s := range stores {
			w += s.Stats().Waits
		}
		return w == replicas-1
	})
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d registrations across the fleet, want 1", n)
	}
	var regs, hits uint64
	for i := range stores {
		if errs[i] != nil || ids[i] != "task-1" {
			t.Fatalf("replica %d: %q, %v; want task-1", i, ids[i], errs[i])
		}
		st := stores[i].Stats()
		regs += st.Registrations
		hits += st.Hits
		if st.LocalFallbacks != 0 || st.Outages != 0 {
			t.Fatalf("replica %d: unexpected fallback: %+v", i, st)
		}
	}
	if regs != 1 || hits != replicas-1 {
		t.Fatalf("registrations %d hits %d, want 1 and %d", regs, hits, replicas-1)
	}
	// The lock is gone and the mapping is there, with a TTL.
	c := newClient(t, addr)
	k := stores[0].keysFor(key)
	if n, _ := c.Exists(context.Background(), k.lock).Result(); n != 0 {
		t.Fatal("lock left behind after publishing")
	}
	if ttl, _ := c.PTTL(context.Background(), k.mapping).Result(); ttl <= 0 || ttl > DefaultTTL {
		t.Fatalf("mapping TTL %v", ttl)
	}
}

// A lock whose holder died (it never publishes or releases) is taken over
// once it expires.
func TestTakeoverAfterLockExpiry(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{LockTimeout: time.Second, OpTimeout: 500 * time.Millisecond, PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "orphaned"}
	k := s.keysFor(key)
	c := newClient(t, addr)
	if err := c.Set(context.Background(), k.lock, "dead-holder", 400*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var calls atomic.Int32
	id, err := s.Resolve(context.Background(), key, fixedID("task-new", &calls))
	elapsed := time.Since(start)
	if err != nil || id != "task-new" || calls.Load() != 1 {
		t.Fatalf("Resolve = %q, %v after %d registrations", id, err, calls.Load())
	}
	if elapsed < 300*time.Millisecond {
		t.Fatalf("took over after %v, before the dead holder's lock expired", elapsed)
	}
	if st := s.Stats(); st.Waits != 1 || st.Takeovers != 1 || st.Registrations != 1 {
		t.Fatalf("stats %+v", st)
	}
	if v, _ := c.Get(context.Background(), k.mapping).Result(); v != "task-new" {
		t.Fatalf("mapping %q", v)
	}
}

// A holder whose registration fails releases the lock at once: a waiting
// replica registers without waiting for LockTimeout, and the failure is
// returned unchanged to the holder.
func TestFailedRegistrationReleasesLock(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	opts := Options{Prefix: prefix, PollInterval: time.Millisecond, MaxPollInterval: 5 * time.Millisecond}
	a, b := newStore(t, addr, opts), newStore(t, addr, opts)
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-f"}
	boom := errors.New("registration rejected")
	entered, fail := make(chan struct{}), make(chan struct{})
	var aErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, aErr = a.Resolve(context.Background(), key, func(context.Context) (string, error) {
			close(entered)
			<-fail
			return "", boom
		})
	})
	<-entered
	var bID string
	var bErr error
	var calls atomic.Int32
	wg.Go(func() { bID, bErr = b.Resolve(context.Background(), key, fixedID("task-b", &calls)) })
	waitUntil(t, 5*time.Second, "replica b to wait", func() bool { return b.Stats().Waits == 1 })
	start := time.Now()
	close(fail)
	wg.Wait()
	if !errors.Is(aErr, boom) {
		t.Fatalf("holder error = %v, want the registration error", aErr)
	}
	if bErr != nil || bID != "task-b" || calls.Load() != 1 {
		t.Fatalf("waiter: %q, %v", bID, bErr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waiter needed %v after the holder failed", d)
	}
	if st := b.Stats(); st.Takeovers != 1 || st.Registrations != 1 {
		t.Fatalf("waiter stats %+v", st)
	}
	if st := a.Stats(); st.Registrations != 0 {
		t.Fatalf("holder stats %+v", st)
	}
}

// A holder whose lock expired while it registered, and whose thread was
// meanwhile registered and published by another replica, adopts the
// published task: the fleet never holds two mappings for one thread.
func TestLateHolderAdoptsPublishedTask(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	opts := Options{Prefix: prefix, PollInterval: time.Millisecond}
	a, b := newStore(t, addr, opts), newStore(t, addr, opts)
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-late"}
	k := a.keysFor(key)
	c := newClient(t, addr)
	entered, finish := make(chan struct{}), make(chan struct{})
	var aID string
	var aErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		aID, aErr = a.Resolve(context.Background(), key, func(context.Context) (string, error) {
			close(entered)
			<-finish
			return "task-a", nil
		})
	})
	<-entered
	if err := c.Del(context.Background(), k.lock).Err(); err != nil { // a's lock "expires"
		t.Fatal(err)
	}
	var calls atomic.Int32
	bID, err := b.Resolve(context.Background(), key, fixedID("task-b", &calls))
	if err != nil || bID != "task-b" {
		t.Fatalf("b: %q, %v", bID, err)
	}
	close(finish)
	wg.Wait()
	if aErr != nil || aID != "task-b" {
		t.Fatalf("late holder got %q, %v; want the published task-b", aID, aErr)
	}
	if v, _ := c.Get(context.Background(), k.mapping).Result(); v != "task-b" {
		t.Fatalf("mapping %q, want task-b", v)
	}
	if n, _ := c.Exists(context.Background(), k.lock).Result(); n != 0 {
		t.Fatal("b's lock left behind")
	}
}

// A waiter whose context ends stops at once with the context's error; that
// is not a Redis outage and nothing is registered.
func TestWaitEndsWithContext(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{PollInterval: time.Millisecond})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "busy"}
	c := newClient(t, addr)
	if err := c.Set(context.Background(), s.keysFor(key).lock, "someone", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := s.Resolve(ctx, key, fixedID("never", &calls))
		done <- err
	}()
	waitUntil(t, 5*time.Second, "the wait to start", func() bool { return s.Stats().Waits == 1 })
	cancel()
	err := <-done
	var se *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.Op != "wait" || se.Temporary() {
		t.Fatalf("err = %v, want a non-temporary *Error wrapping context.Canceled", err)
	}
	if calls.Load() != 0 {
		t.Fatal("registered although another replica holds the lock")
	}
	if st := s.Stats(); st.Outages != 0 || st.LocalFallbacks != 0 {
		t.Fatalf("a cancelled wait counted as an outage: %+v", st)
	}

	// With a deadline, a lock held too long (a dead holder's) is waited
	// for two thirds of the time; then the replica registers locally
	// rather than fail the attempt.
	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	id, err := s.Resolve(dctx, key, fixedID("local", &calls))
	if err != nil || id != "local" || calls.Load() != 1 {
		t.Fatalf("Resolve with a stuck lock = %q, %v (calls %d), want a local registration", id, err, calls.Load())
	}
	if dctx.Err() != nil {
		t.Fatal("the local registration used the whole deadline")
	}
	if st := s.Stats(); st.LocalFallbacks != 1 || st.Outages != 0 {
		t.Fatalf("stats %+v, want one local fallback and no outage", st)
	}
}

func TestForgetOnlyTheRejectedTask(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-401"}
	ctx := context.Background()
	var calls atomic.Int32
	if id, err := s.Resolve(ctx, key, fixedID("task-1", &calls)); err != nil || id != "task-1" {
		t.Fatalf("%q %v", id, err)
	}
	if err := s.Forget(ctx, key, "task-0"); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Resolve(ctx, key, fixedID("task-2", &calls)); id != "task-1" || calls.Load() != 1 {
		t.Fatalf("Forget of another task removed the mapping: got %q after %d registrations", id, calls.Load())
	}
	if err := s.Forget(ctx, key, "task-1"); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Resolve(ctx, key, fixedID("task-2", &calls)); id != "task-2" || calls.Load() != 2 {
		t.Fatalf("after Forget: %q after %d registrations", id, calls.Load())
	}
	if st := s.Stats(); st.Forgets != 1 || st.Hits != 1 || st.Registrations != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A fleet hit extends the mapping's life (sliding TTL).
func TestHitRefreshesTTL(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{TTL: time.Hour})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-ttl"}
	ctx := context.Background()
	var calls atomic.Int32
	if _, err := s.Resolve(ctx, key, fixedID("task-1", &calls)); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, addr)
	m := s.keysFor(key).mapping
	if err := c.PExpire(ctx, m, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, key, fixedID("task-x", &calls)); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := c.PTTL(ctx, m).Result(); ttl < 59*time.Minute {
		t.Fatalf("TTL after a hit = %v, want about 1h", ttl)
	}
}

// An empty id is not published and releases the lock.
func TestEmptyTaskIDIsAnError(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-empty"}
	var calls atomic.Int32
	if _, err := s.Resolve(context.Background(), key, fixedID("", &calls)); err == nil {
		t.Fatal("empty task id accepted")
	}
	c := newClient(t, addr)
	k := s.keysFor(key)
	if n, _ := c.Exists(context.Background(), k.mapping, k.lock).Result(); n != 0 {
		t.Fatalf("%d keys left after an empty id", n)
	}
}

// With no Redis at all every Resolve registers locally; the outage is
// counted and logged once, and Forget reports a temporary *Error.
func TestUnreachableRedisFallsBackLocally(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there
	logs := &logRecorder{}
	s := newStore(t, addr, Options{Logger: slog.New(logs), OpTimeout: DefaultOpTimeout})
	var calls atomic.Int32
	for i := range 5 {
		id, err := s.Resolve(context.Background(), taskcache.StoreKey{RuntimeID: "rt", ExternalRef: fmt.Sprint(i)}, fixedID("local", &calls))
		if err != nil || id != "local" {
			t.Fatalf("Resolve = %q, %v", id, err)
		}
	}
	err := s.Forget(context.Background(), taskcache.StoreKey{RuntimeID: "rt", ExternalRef: "0"}, "local")
	var se *Error
	if !errors.As(err, &se) || se.Op != "forget" || !se.Temporary() {
		t.Fatalf("Forget err = %v", err)
	}
	st := s.Stats()
	if calls.Load() != 5 || st.LocalFallbacks != 5 || st.Outages != 1 || !st.Down || st.Errors != 6 {
		t.Fatalf("stats %+v after %d registrations", st, calls.Load())
	}
	if n := logs.count("WARN"); n != 1 {
		t.Fatalf("%d outage warnings, want 1:\n%s", n, logs.all())
	}
}
