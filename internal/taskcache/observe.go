package taskcache

import (
	"context"

	"github.com/agentauth/agentauth/resolver"
)

// removed reports one removal to the OnRemove hook, if any. c.mu is held.
func (c *Cache) removed(key string, why resolver.RemovalReason) {
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

// Attempt returns, inside a [RegisterFunc] called by a [Cache], which
// consecutive attempt for the key this is: 1 for the first, n+1 after n
// failures in a row. It returns 0 for a context that does not come from a
// Cache.
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
