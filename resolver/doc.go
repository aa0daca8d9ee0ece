// Package resolver decides how one outgoing request is authenticated and
// keeps the per-thread state that decision needs.
//
// [Decide] maps credential kind × use_agent_identity flag × thread key ×
// origin to a [Mode]: the behaviour matrix of docs/protocol.md. [TaskCache]
// holds one registered Agent Identity task per thread key: keyed
// single-flight on a miss, a lock-free read on a hit, jittered backoff after
// a failure, a capacity with CLOCK (approximately LRU) eviction, an idle TTL
// and generation-safe invalidation after a 401. [Signer] mints and caches the
// AgentAssertion of each task so that a task is signed at most once per
// second however many requests use it.
package resolver
