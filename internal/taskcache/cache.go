package taskcache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/resolver"
	"golang.org/x/sync/singleflight"
)

// errEmptyTaskID fails a registration that "succeeded" without an id, which
// would otherwise be cached and sent in every assertion.
var errEmptyTaskID = errors.New("RegisterFunc returned an empty task id")

// RegisterFunc registers the task for key and returns its id.
//
// The cache calls it at most once at a time per key, and concurrently for
// different keys. Its context carries the values of the Get that started the
// attempt (trace spans, loggers) but none of that Get's cancellation or
// deadline: the attempt is shared by every caller waiting for the key, so no
// one caller may end it. The context is instead bounded by
// [resolver.CacheOptions.Timeout]. RegisterFunc must return when ctx ends; one that
// does not holds the key's attempt (and its goroutine) open, and later Gets
// for that key wait on it until their own contexts end. It must not call
// runtime.Goexit. A panic is recovered and reported as
// [resolver.ErrRegistrationPanic].
type RegisterFunc func(ctx context.Context, key string) (taskID string, err error)

// CacheStats is a snapshot of a [Cache]'s counters. Each counts events
// since the cache was built.
type CacheStats struct {
	// Registrations counts RegisterFunc calls that returned a task.
	Registrations uint64
	// Failures counts RegisterFunc calls that failed, including timeouts,
	// empty ids and panics.
	Failures uint64
	// Panics counts RegisterFunc calls that panicked (also in Failures).
	Panics uint64
	// Evictions counts entries dropped to stay within Capacity.
	Evictions uint64
	// Expirations counts entries dropped or replaced after IdleTTL.
	Expirations uint64
	// BackoffRejections counts Gets refused with a [*resolver.BackoffError] without
	// a registration call.
	BackoffRejections uint64
	// Invalidations counts [Cache.Invalidate] calls that removed a task.
	Invalidations uint64
}

// Cache maps keys to registered tasks and guarantees one registration
// per key: concurrent Gets for a key that has no task share one call of the
// [RegisterFunc], and a cached task is returned without any lock.
//
// The cache is bounded by a capacity and an idle TTL; a failed registration
// is never cached as a task but puts its key into exponential, jittered
// backoff, during which Gets for that key fail fast with a [*resolver.BackoffError].
// Other keys are unaffected. A Cache must be built with [New]
// and is safe for concurrent use.
type Cache struct {
	register RegisterFunc
	now      func() time.Time
	epoch    time.Time // tick 0
	ttlTicks int64     // whole seconds; < 0: never expire
	timeout  time.Duration
	backoff  backoffPolicy
	capacity int
	seed     maphash.Seed

	// tasks indexes the cached tasks by key for lock-free reads; it is
	// written only under mu, and replaced wholesale when it grows.
	tasks   atomic.Pointer[table]
	flights singleflight.Group

	mu      sync.Mutex
	failing map[string]*backoffState // keys in backoff
	ring    []*node                  // every entry, tasks and failing, each at ring[node.slot]
	hand    int                      // CLOCK hand: next ring index considered for eviction
	scan    int                      // next ring index checked for idle expiry

	registrations, failures, panics, evictions, expirations,
	backoffRejections, invalidations atomic.Uint64

	// onWait, when set by tests, is called when a Get takes the slow path:
	// after it has joined the key's flight when its context can be canceled
	// (DoChan), just before joining otherwise (Do).
	onWait func(key string)

	onRemove func(key string, why resolver.RemovalReason) // resolver.CacheOptions.OnRemove
}

// sweepBatch is how many ring entries each insert checks for idle expiry,
// so that expired entries leave the cache even when it is not full, at a
// bounded cost per insert.
const sweepBatch = 4

// New returns a cache that registers tasks with register, configured
// by opts (see [resolver.CacheOptions] for each default). It reports an error for a
// nil register and for invalid or contradictory options.
func New(register RegisterFunc, opts resolver.CacheOptions) (*Cache, error) {
	if register == nil {
		return nil, errors.New("taskcache: New: nil RegisterFunc")
	}
	o := opts
	switch {
	case o.Capacity < 0:
		return nil, fmt.Errorf("resolver: CacheOptions.Capacity %d is negative", o.Capacity)
	case o.Capacity == 0:
		o.Capacity = resolver.DefaultCapacity
	}
	if o.Capacity > math.MaxInt32 {
		return nil, fmt.Errorf("resolver: CacheOptions.Capacity %d is too large", o.Capacity)
	}
	if o.IdleTTL == 0 {
		o.IdleTTL = resolver.DefaultIdleTTL
	}
	switch {
	case o.Timeout < 0:
		return nil, fmt.Errorf("resolver: CacheOptions.Timeout %v is negative", o.Timeout)
	case o.Timeout == 0:
		o.Timeout = resolver.DefaultTimeout
	}
	switch {
	case o.BackoffInitial < 0:
		return nil, fmt.Errorf("resolver: CacheOptions.BackoffInitial %v is negative", o.BackoffInitial)
	case o.BackoffInitial == 0:
		o.BackoffInitial = resolver.DefaultBackoffInitial
	}
	switch {
	case o.BackoffMax < 0:
		return nil, fmt.Errorf("resolver: CacheOptions.BackoffMax %v is negative", o.BackoffMax)
	case o.BackoffMax == 0:
		o.BackoffMax = max(resolver.DefaultBackoffMax, o.BackoffInitial)
	case o.BackoffMax < o.BackoffInitial:
		return nil, fmt.Errorf("resolver: CacheOptions.BackoffMax %v is below BackoffInitial %v", o.BackoffMax, o.BackoffInitial)
	}
	switch {
	case math.IsNaN(o.BackoffJitter) || o.BackoffJitter > 1:
		return nil, fmt.Errorf("resolver: CacheOptions.BackoffJitter %v is not a fraction in [0, 1]", o.BackoffJitter)
	case o.BackoffJitter < 0:
		o.BackoffJitter = 0
	case o.BackoffJitter == 0:
		o.BackoffJitter = resolver.DefaultBackoffJitter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}

	ttl := int64(-1)
	if o.IdleTTL > 0 {
		ttl = int64((o.IdleTTL + time.Second - 1) / time.Second)
	}
	return &Cache{
		register: register,
		now:      o.Now,
		epoch:    o.Now(),
		ttlTicks: ttl,
		timeout:  o.Timeout,
		backoff: backoffPolicy{
			initial: o.BackoffInitial,
			max:     o.BackoffMax,
			jitter:  o.BackoffJitter,
			rand:    o.Rand,
		},
		capacity: o.Capacity,
		seed:     maphash.MakeSeed(),
		failing:  map[string]*backoffState{},
		onRemove: o.OnRemove,
	}, nil
}

// Get returns the task for key, registering it if the cache holds none.
//
// A cached task is returned at once, whatever the state of ctx. Otherwise
// Get joins the key's registration attempt, starting one if none is
// running, and waits until the attempt ends or ctx does. If ctx ends first,
// Get returns an error that satisfies errors.Is with ctx.Err()
// (context.Canceled or context.DeadlineExceeded); the attempt carries on
// for the other callers and its result is cached. A failed attempt returns a
// [*resolver.RegistrationError] to everyone who waited for it; later Gets for that
// key return a [*resolver.BackoffError] without calling the RegisterFunc until the
// backoff deadline passes.
//
// Get treats key as an opaque string; validating thread keys is the
// caller's job.
func (c *Cache) Get(ctx context.Context, key string) (*Task, error) {
	if t := c.tasks.Load().find(c.seed, key); t != nil && c.use(&t.node) {
		return t, nil
	}
	return c.wait(ctx, key)
}

// use marks a task entry as used now and reports whether it is still live.
// Beyond reading the clock (skipped when entries never expire), it is the
// whole cost of a hit: one atomic load, and a store only when the second
// changed or the eviction hand has cleared the reference bit since the last
// use, so that hot keys do not bounce a cache line between cores.
func (c *Cache) use(n *node) bool {
	v := n.used.Load()
	if c.ttlTicks < 0 {
		if v&1 == 0 {
			n.used.Store(v | 1)
		}
		return true
	}
	now, last := c.tick(c.now()), v>>1
	if now > last && now-last > uint64(c.ttlTicks) {
		return false
	}
	if last < now {
		n.used.Store(now<<1 | 1)
	} else if v&1 == 0 {
		n.used.Store(v | 1)
	}
	return true
}

// expired reports whether the entry has been idle longer than the TTL.
func (c *Cache) expired(n *node, now uint64) bool {
	if c.ttlTicks < 0 {
		return false
	}
	last := n.used.Load() >> 1
	return now > last && now-last > uint64(c.ttlTicks)
}

// tick converts a time on the cache's clock to whole seconds since the
// cache was built (via Sub, so time.Now's monotonic reading is used).
func (c *Cache) tick(t time.Time) uint64 {
	d := t.Sub(c.epoch)
	if d < 0 {
		return 0
	}
	return uint64(d / time.Second)
}

// wait is the slow path of Get: join or start the key's flight and wait for
// it or for ctx.
func (c *Cache) wait(ctx context.Context, key string) (*Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, waitError(err)
	}
	c.mu.Lock()
	b := c.failing[key]
	c.mu.Unlock()
	if b != nil && c.now().Before(b.until) {
		c.backoffRejections.Add(1)
		return nil, b.err
	}
	fn := func() (any, error) { return c.fly(ctx, key) }
	if ctx.Done() == nil {
		// This caller can never stop waiting, so the flight may as well run
		// on its goroutine (singleflight.Do) instead of a new one: same
		// sharing and detachment, a fraction of the cost. fly never panics.
		if c.onWait != nil {
			c.onWait(key)
		}
		v, err, _ := c.flights.Do(key, fn)
		if err != nil {
			return nil, err
		}
		return v.(*Task), nil
	}
	ch := c.flights.DoChan(key, fn)
	if c.onWait != nil {
		c.onWait(key)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Task), nil
	case <-ctx.Done():
		return nil, waitError(ctx.Err())
	}
}

func waitError(err error) error {
	return fmt.Errorf("taskcache: stopped waiting for task registration: %w", err)
}

// fly is one registration attempt for key, run by singleflight on its own
// goroutine (DoChan) or on the first caller's (Do). It must never panic
// (DoChan turns a panic into a process crash), and it stores its outcome
// before returning, so that a Get that missed just before the flight ended
// finds the result on its re-check instead of starting a second
// registration.
func (c *Cache) fly(ctx context.Context, key string) (any, error) {
	// Re-check under the lock: a previous flight for key may have finished
	// between this caller's miss and the start of this flight.
	now := c.now()
	failures := 0
	c.mu.Lock()
	t := c.tasks.Load().find(c.seed, key)
	b := c.failing[key]
	c.mu.Unlock()
	switch {
	case t != nil && c.use(&t.node):
		return t, nil
	case b != nil && now.Before(b.until):
		c.backoffRejections.Add(1)
		return nil, b.err
	case b != nil:
		failures = b.failures
	}

	id, err := c.call(withAttempt(ctx, failures+1), key)
	now = c.now()
	if err != nil {
		c.failures.Add(1)
		n := failures + 1
		rerr := &resolver.RegistrationError{Key: key, Err: err}
		until := now.Add(c.backoff.wait(n, err))
		b := &backoffState{
			node:     node{key: key, failed: true},
			failures: n,
			until:    until,
			err:      &resolver.BackoffError{Key: key, Until: until, Failures: n, Err: rerr},
		}
		// Recency of a backoff entry is its deadline: it expires IdleTTL
		// after it, and gets one pass of the eviction hand.
		b.used.Store(c.tick(until)<<1 | 1)
		c.store(nil, b, now)
		return nil, rerr
	}
	c.registrations.Add(1)
	t = &Task{node: node{key: key}, id: id}
	t.used.Store(c.tick(now) << 1)
	c.store(t, nil, now)
	return t, nil
}

// call runs the RegisterFunc on a context detached from the callers and
// bounded by the timeout, turning a panic into an error.
func (c *Cache) call(parent context.Context, key string) (id string, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			c.panics.Add(1)
			id, err = "", resolver.ErrRegistrationPanic
		}
	}()
	id, err = c.register(ctx, key)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("attempt timed out after %v: %w", c.timeout, err)
		} else {
			err = fmt.Errorf("attempt timed out after %v: %w: %w", c.timeout, context.DeadlineExceeded, err)
		}
	case err == nil && id == "":
		err = errEmptyTaskID
	}
	if err != nil {
		id = ""
	}
	return id, err
}

// store makes t (or, if t is nil, b) the entry for its key, replacing the
// key's previous entry in its ring slot, or taking a free or evicted slot.
func (c *Cache) store(t *Task, b *backoffState, now time.Time) {
	var n *node
	if t != nil {
		n = &t.node
	} else {
		n = &b.node
	}
	tick := c.tick(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(tick)

	var old *node
	if ot := c.tasks.Load().find(c.seed, n.key); ot != nil {
		// A flight replaces a cached task only after seeing it idle-expired.
		c.expirations.Add(1)
		c.removed(n.key, resolver.RemovalExpired)
		old = &ot.node
	} else if ob := c.failing[n.key]; ob != nil {
		old = &ob.node
	}
	switch {
	case old != nil:
		i := int(old.slot)
		if t != nil && !old.failed {
			old.slot = -1 // put below replaces the task in its table slot
		} else {
			c.unindex(old)
		}
		c.place(i, n)
	case len(c.ring) < c.capacity:
		c.ring = append(c.ring, nil)
		c.place(len(c.ring)-1, n)
	default:
		c.place(c.evict(tick), n)
	}
	if t != nil {
		c.tasks.Store(c.tasks.Load().put(c.seed, t))
	} else {
		c.failing[n.key] = b
	}
}

func (c *Cache) place(i int, n *node) {
	c.ring[i] = n
	n.slot = int32(i)
}

// unindex takes n out of the task table or the failing map and marks it
// gone; its ring slot is left for the caller to reuse or remove. c.mu is
// held.
func (c *Cache) unindex(n *node) {
	if n.failed {
		delete(c.failing, n.key)
	} else {
		c.tasks.Load().del(c.seed, n.key)
	}
	if n.slot >= 0 {
		c.ring[n.slot] = nil
	}
	n.slot = -1
}

// evict frees one slot of a full ring and returns its index. It runs the
// CLOCK hand: an idle-expired entry goes first; an entry used since the hand
// last passed loses its reference bit and is spared; the first entry without
// it is evicted. c.mu is held.
func (c *Cache) evict(now uint64) int {
	for range 2 * len(c.ring) {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		i := c.hand
		c.hand++
		n := c.ring[i]
		if c.expired(n, now) {
			c.unindex(n)
			c.expirations.Add(1)
			c.removed(n.key, resolver.RemovalExpired)
			return i
		}
		if v := n.used.Load(); v&1 != 0 {
			// If the swap fails, a Get has just used the entry: spare it too.
			n.used.CompareAndSwap(v, v&^1)
			continue
		}
		c.unindex(n)
		c.evictions.Add(1)
		c.removed(n.key, resolver.RemovalEvicted)
		return i
	}
	// Two full turns, and every entry was used again behind the hand: the
	// cache is uniformly hot, so any victim is as good as another.
	if c.hand >= len(c.ring) {
		c.hand = 0
	}
	i := c.hand
	c.hand++
	c.removed(c.ring[i].key, resolver.RemovalEvicted)
	c.unindex(c.ring[i])
	c.evictions.Add(1)
	return i
}

// sweep checks up to sweepBatch entries for idle expiry and removes the
// expired ones. c.mu is held.
func (c *Cache) sweep(now uint64) {
	if c.ttlTicks < 0 {
		return
	}
	for range sweepBatch {
		if len(c.ring) == 0 {
			return
		}
		if c.scan >= len(c.ring) {
			c.scan = 0
		}
		if c.expired(c.ring[c.scan], now) {
			c.removed(c.ring[c.scan].key, resolver.RemovalExpired)
			c.remove(c.scan) // the last entry moves into this slot; check it next
			c.expirations.Add(1)
			continue
		}
		c.scan++
	}
}

// remove deletes the entry at ring index i, moving the last entry into its
// slot. c.mu is held.
func (c *Cache) remove(i int) {
	c.unindex(c.ring[i])
	last := len(c.ring) - 1
	if i != last {
		c.place(i, c.ring[last])
		c.ring[last] = nil
	}
	c.ring = c.ring[:last]
}

// table is an open-addressing (linear probing) hash table of tasks by key.
// Readers need no lock: they load slots atomically, and a slot once used is
// never emptied again (deletion leaves a tombstone), so a probe for a key
// that is present cannot stop short of it. Writers hold Cache.mu. When
// tombstones and tasks fill three quarters of the slots, the writer builds a
// new table sized for the live tasks and publishes it; readers still on the
// old one see a consistent, frozen snapshot.
type table struct {
	slots      []atomic.Pointer[Task]
	mask       uint64
	live, dead int // guarded by Cache.mu
}

// tombstone marks a deleted slot. It is never returned: its key is checked
// by pointer before any key comparison.
var tombstone = new(Task)

// find returns the task for key, or nil. tb may be nil.
func (tb *table) find(seed maphash.Seed, key string) *Task {
	if tb == nil {
		return nil
	}
	i := maphash.String(seed, key) & tb.mask
	for range len(tb.slots) {
		t := tb.slots[i].Load()
		if t == nil {
			return nil
		}
		if t != tombstone && t.key == key {
			return t
		}
		i = (i + 1) & tb.mask
	}
	return nil
}

// put stores t, replacing the task with the same key if there is one, and
// returns the table to publish (tb itself, or a rebuilt one). tb may be nil.
// Cache.mu is held.
func (tb *table) put(seed maphash.Seed, t *Task) *table {
	if tb == nil || (tb.live+tb.dead+1)*4 > len(tb.slots)*3 {
		tb = tb.rebuild(seed)
	}
	free := -1
	i := maphash.String(seed, t.key) & tb.mask
	for range len(tb.slots) {
		cur := tb.slots[i].Load()
		if cur == nil {
			break
		}
		if cur == tombstone {
			if free < 0 {
				free = int(i)
			}
		} else if cur.key == t.key {
			tb.slots[i].Store(t)
			return tb
		}
		i = (i + 1) & tb.mask
	}
	if free >= 0 {
		tb.dead--
		i = uint64(free)
	}
	tb.slots[i].Store(t)
	tb.live++
	return tb
}

// del replaces the task for key, if any, with a tombstone. tb may be nil.
// Cache.mu is held.
func (tb *table) del(seed maphash.Seed, key string) {
	if tb == nil {
		return
	}
	i := maphash.String(seed, key) & tb.mask
	for range len(tb.slots) {
		t := tb.slots[i].Load()
		if t == nil {
			return
		}
		if t != tombstone && t.key == key {
			tb.slots[i].Store(tombstone)
			tb.live--
			tb.dead++
			return
		}
		i = (i + 1) & tb.mask
	}
}

// rebuild returns a new table holding tb's tasks (none if tb is nil), with
// room for one more at a load of at most one half. Cache.mu is held.
func (tb *table) rebuild(seed maphash.Seed) *table {
	live := 0
	if tb != nil {
		live = tb.live
	}
	size := 8
	for size < 2*(live+1) {
		size *= 2
	}
	nt := &table{slots: make([]atomic.Pointer[Task], size), mask: uint64(size - 1)}
	if tb == nil {
		return nt
	}
	for i := range tb.slots {
		if t := tb.slots[i].Load(); t != nil && t != tombstone {
			j := maphash.String(seed, t.key) & nt.mask
			for nt.slots[j].Load() != nil {
				j = (j + 1) & nt.mask
			}
			nt.slots[j].Store(t)
			nt.live++
		}
	}
	return nt
}

// Invalidate removes rejected from the cache if, and only if, the cache still
// holds exactly that task for rejected.Key(), and reports whether it did.
//
// It is the 401 primitive: a caller whose request was rejected with task t
// calls Invalidate(t) and then Get. Whichever of several such callers comes
// first removes t; the others' calls are no-ops (the cache already holds a
// newer task, or a registration for one is running), so all of them end up
// sharing a single new registration. Invalidate(nil) returns false.
func (c *Cache) Invalidate(rejected *Task) bool {
	if rejected == nil || c.tasks.Load().find(c.seed, rejected.key) != rejected {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tasks.Load().find(c.seed, rejected.key) != rejected {
		return false
	}
	c.remove(int(rejected.slot))
	c.invalidations.Add(1)
	return true
}

// Len returns the number of keys the cache holds: keys with a task plus
// keys in failure backoff. It never exceeds the capacity.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ring)
}

// Stats returns a snapshot of the cache's counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Registrations:     c.registrations.Load(),
		Failures:          c.failures.Load(),
		Panics:            c.panics.Load(),
		Evictions:         c.evictions.Load(),
		Expirations:       c.expirations.Load(),
		BackoffRejections: c.backoffRejections.Load(),
		Invalidations:     c.invalidations.Load(),
	}
}
