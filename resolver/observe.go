package resolver

import "context"

// RemovalReason says why a [TaskCache] dropped an entry on its own (not on
// [TaskCache.Invalidate]).
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

// removed reports one removal to the OnRemove hook, if any. c.mu is held.
func (c *TaskCache) removed(key string, why RemovalReason) {
	if c.onRemove != nil {
		c.onRemove(key, why)
	}
}

type attemptKey struct{}

// withAttempt records in the registration context which consecutive
// attempt for its key this is (1 for the first, 2 after one failure, ...).
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// Attempt returns, inside a [RegisterFunc] called by a [TaskCache], which
// consecutive attempt for the key this is: 1 for the first, n+1 after n
// failures in a row. It returns 0 for a context that does not come from a
// TaskCache.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// SetObserver makes the signer call fn after each assertion it signs (not
// when it reuses a cached one), with the task it signed for. Call it before
// the signer's first use; fn must be safe for concurrent use and quick. nil
// removes the hook.
func (s *Signer) SetObserver(fn func(task *Task)) { s.onSign = fn }

// signed reports one signature to the hook, if any.
func (s *Signer) signed(task *Task) {
	if s.onSign != nil {
		s.onSign(task)
	}
}
