// Package taskcache holds the per-thread Agent Identity tasks of a transport
// and signs their assertions; it is the machinery behind
// CacheOptions and is used only by the transport.
//
// A [Cache] keeps one registered task per key: keyed single flight on a
// miss, a lock-free read on a hit, jittered backoff after a failure, a
// capacity with CLOCK (approximately LRU) eviction, an idle TTL and
// generation-safe invalidation after a 401. [Signer] mints and caches the
// AgentAssertion of each task so that a task is signed at most once per
// second however many requests use it. [Policy] (timeout, backoff, clock)
// is shared with the process task.
//
// One file per concern: options.go validates CacheOptions,
// flight.go is the keyed single flight, backoff.go and policy.go how an
// attempt runs and is retried, ring.go the CLOCK eviction ring and the idle
// sweep, table.go the lock-free index (and why it is not a sync.Map),
// errors.go the package's own errors, task.go the cached value.
package taskcache
