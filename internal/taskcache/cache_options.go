package taskcache

import "time"

// Defaults applied to zero fields of [CacheOptions].
const (
	DefaultCapacity       = 10_000
	DefaultIdleTTL        = time.Hour
	DefaultTimeout        = 30 * time.Second
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = time.Minute
	DefaultBackoffJitter  = 0.5
)

// CacheOptions tunes the transport's per-thread task cache: one registered
// task per thread key, a single registration per key however many requests
// miss at once, jittered backoff after a failure, a capacity with CLOCK
// (approximately least-recently-used) eviction and an idle TTL. The zero
// value selects every default; the transport's constructor rejects
// contradictory or out-of-range values.
type CacheOptions struct {
	// Capacity bounds the number of keys the cache holds: keys with a task
	// plus keys in failure backoff. When it is full, an insert evicts an
	// entry not used since the eviction hand last passed (CLOCK, an
	// approximation of least-recently-used). 0 means DefaultCapacity
	// (10,000); negative is an error.
	Capacity int

	// IdleTTL drops an entry that no request has used for this long, so that
	// threads that ended do not hold memory until evicted. Idle time is
	// counted in whole seconds (IdleTTL is rounded up to one): an entry
	// expires no earlier than IdleTTL and no later than IdleTTL plus two
	// seconds after its last use. A key in backoff expires IdleTTL after its
	// backoff deadline. 0 means DefaultIdleTTL (1 h); negative means entries
	// never expire (only Capacity bounds the cache).
	IdleTTL time.Duration

	// Timeout bounds one registration attempt (the context passed to the
	// registration call). It runs on the real clock, not on Now. 0 means
	// DefaultTimeout (30 s); negative is an error.
	Timeout time.Duration

	// BackoffInitial is the wait after the first failed registration of a
	// key; each further consecutive failure doubles it, up to BackoffMax. A
	// success resets the sequence. A failure that carries the server's
	// Retry-After (an [identity.RegistrationError] of a 429 or 503) waits at
	// least that long, up to BackoffMax or 10 min, whichever is longer. 0
	// means DefaultBackoffInitial (1 s); negative is an error.
	BackoffInitial time.Duration

	// BackoffMax caps the wait between attempts for one key; a server's
	// Retry-After is honoured beyond it, up to 10 min. 0 means
	// DefaultBackoffMax (1 min), or BackoffInitial if that is larger; a
	// non-zero value below BackoffInitial, or a negative one, is an error.
	BackoffMax time.Duration

	// BackoffJitter is the fraction of each wait that is randomised: the wait
	// is d·(1 − BackoffJitter·r) with r drawn from Rand, so concurrent
	// clients that failed together do not retry together. 0 means
	// DefaultBackoffJitter (0.5, i.e. waits between d/2 and d); a negative
	// value means no jitter (exact waits); above 1 or NaN is an error.
	BackoffJitter float64

	// Now is the clock for recency, idle expiry and backoff deadlines. nil
	// means time.Now.
	Now func() time.Time

	// Rand returns a float64 in [0, 1) for jitter; it may be called from
	// several goroutines at once. Values outside the range are clamped. nil
	// means math/rand/v2.Float64.
	Rand func() float64

	// OnRemove, if set, is called when the cache drops an entry on its own:
	// evicted to stay within Capacity or expired after IdleTTL (not on
	// Invalidate). It is called with the cache's lock held, so it must be
	// quick and must not call the cache.
	OnRemove func(key string, why RemovalReason)
}

// RemovalReason says why the task cache dropped an entry on its own (not
// after a 401 invalidated it).
type RemovalReason uint8

// The reasons passed to [CacheOptions.OnRemove].
const (
	// RemovalEvicted: the cache was full and the entry was the CLOCK
	// victim.
	RemovalEvicted RemovalReason = iota + 1
	// RemovalExpired: the entry had been idle longer than IdleTTL.
	RemovalExpired
)

// String returns "evicted", "expired" or "unknown".
func (r RemovalReason) String() string {
	switch r {
	case RemovalEvicted:
		return "evicted"
	case RemovalExpired:
		return "expired"
	}
	return "unknown"
}
