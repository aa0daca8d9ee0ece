package taskcache

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

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
	// BackoffRejections counts Gets refused with a [*BackoffError] without
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
// backoff, during which Gets for that key fail fast with a [*BackoffError].
// Other keys are unaffected. A Cache must be built with [New]
// and is safe for concurrent use.
type Cache struct {
	register RegisterFunc
	now      func() time.Time
	epoch    time.Time // tick 0
	ttlTicks int64     // whole seconds; < 0: never expire
	policy   Policy
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

	onRemove func(key string, why RemovalReason) // CacheOptions.OnRemove
}

// New returns a cache that registers tasks with register, configured
// by opts (see [CacheOptions] for each default). It reports an error for a
// nil register and for invalid or contradictory options.
func New(register RegisterFunc, opts CacheOptions) (*Cache, error) {
	if register == nil {
		return nil, errors.New("taskcache: New: nil RegisterFunc")
	}
	o, err := withDefaults(opts)
	if err != nil {
		return nil, err
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
		policy:   policyOf(o),
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
// [*AttemptError] to everyone who waited for it; later Gets for that
// key return a [*BackoffError] without calling the RegisterFunc until the
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

// Peek returns the live task cached for key, marking it used at now, or
// nil when the cache holds none. It never registers, waits or consults the
// backoff: it is the hit half of [Cache.Get], for a caller that also needs
// the time (to sign) and so reads the clock once per request. now must be
// a reading of the cache's clock ([CacheOptions.Now]).
func (c *Cache) Peek(key string, now time.Time) *Task {
	t := c.tasks.Load().find(c.seed, key)
	if t == nil {
		return nil
	}
	var tick uint64
	if c.ttlTicks >= 0 {
		tick = c.tick(now)
	}
	if !c.touch(&t.node, tick) {
		return nil
	}
	return t
}

// use marks a task entry as used now and reports whether it is still live.
// Beyond reading the clock (skipped when entries never expire), it is the
// whole cost of a hit: one atomic load, and a store only when the second
// changed or the eviction hand has cleared the reference bit since the last
// use, so that hot keys do not bounce a cache line between cores.
func (c *Cache) use(n *node) bool {
	var now uint64
	if c.ttlTicks >= 0 {
		now = c.tick(c.now())
	}
	return c.touch(n, now)
}

// touch is use at tick now (ignored when entries never expire).
func (c *Cache) touch(n *node, now uint64) bool {
	v := n.used.Load()
	if c.ttlTicks < 0 {
		if v&1 == 0 {
			n.used.Store(v | 1)
		}
		return true
	}
	last := v >> 1
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
