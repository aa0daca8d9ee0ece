// Package temporary is the one rule for whether a failure may go away on
// its own, so that a retry after a backoff is reasonable. The errors of
// resolver and transport report it through their Temporary methods and
// transport.IsTemporary; the leaf errors that know their cause (identity's
// RegistrationError knows HTTP statuses, TLS and network failures) classify
// themselves and this rule defers to them.
package temporary

import (
	"context"
	"errors"
)

// Is reports whether err may go away on its own:
//
//   - nil and a canceled context are never temporary (the caller gave up);
//   - otherwise the outermost error in the chain that classifies itself
//     decides: Temporary() true, or Timeout() true on the same error, is
//     temporary, so a wrapper that knows better (a revoked identity, a
//     panic) overrides what it wraps;
//   - an error nothing classifies is temporary only if it wraps
//     context.DeadlineExceeded (a registration's own timeout).
func Is(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var self interface{ Temporary() bool }
	if errors.As(err, &self) {
		if self.Temporary() {
			return true
		}
		to, ok := self.(interface{ Timeout() bool })
		return ok && to.Timeout()
	}
	var to interface{ Timeout() bool }
	if errors.As(err, &to) && to.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// Permanent is an error value that classifies itself as never temporary,
// for sentinels such as taskcache.ErrRegistrationPanic.
type Permanent string

func (e Permanent) Error() string { return string(e) }

// Temporary is false: the same call fails the same way.
func (Permanent) Temporary() bool { return false }
