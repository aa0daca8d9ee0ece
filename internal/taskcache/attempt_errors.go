package taskcache

import (
	"fmt"
	"time"

	"github.com/agentauth/agentauth/internal/temporary"
)

// ErrRegistrationPanic is wrapped by the error of a task registration that
// panicked. The panic value is deliberately dropped: it may hold request
// data or credentials. It is never temporary.
var ErrRegistrationPanic error = temporary.Permanent("registration panicked")

// BackoffError is returned for a thread key, without any registration call,
// while a key is backing off after a failed registration. Whether it is
// temporary is decided by that failure: after a 503 the same request may
// succeed once Until has passed, after a 403 or a panic it fails again, so
// a retry policy must not spin on it.
type BackoffError struct {
	// Key is the key whose registration is backing off. Thread keys are
	// caller-chosen identifiers, not secrets.
	Key string
	// Until is the earliest time (on the cache's clock) at which the cache will try
	// to register the key again.
	Until time.Time
	// Failures counts the consecutive failed registrations for Key; the
	// delay grows with it.
	Failures int
	// Err is the last failure, a *AttemptError.
	Err error
}

// Error reports the deadline and the last failure.
func (e *BackoffError) Error() string {
	return fmt.Sprintf("resolver: task registration backing off until %s after %d consecutive failure(s): %v",
		e.Until.UTC().Format(time.RFC3339Nano), e.Failures, e.Err)
}

// Unwrap returns the last failure, so errors.Is and errors.As see through
// the backoff to its cause.
func (e *BackoffError) Unwrap() error { return e.Err }

// Temporary reports whether the failure behind the backoff is temporary.
func (e *BackoffError) Temporary() bool { return temporary.Is(e.Err) }

// AttemptError is the error of a failed task-registration attempt in the
// cache, shared by every caller that waited for that attempt; its Err is the
// registration's own error (an identity.RegistrationError for a call to the
// AuthAPI). It is also the Err of the
// [*BackoffError] returned while the key then backs off.
type AttemptError struct {
	// Key is the key that failed to register (not a secret).
	Key string
	// Err is what the registration returned, ErrRegistrationPanic, or a
	// timeout wrapping context.DeadlineExceeded.
	Err error
}

// Error names the key and the cause.
func (e *AttemptError) Error() string {
	return fmt.Sprintf("resolver: registering task for key %q: %v", e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *AttemptError) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed, by the module's one
// rule (the cause's own verdict, a timeout is temporary, a panic or a
// canceled context is not); see transport.IsTemporary.
func (e *AttemptError) Temporary() bool { return temporary.Is(e.Err) }
