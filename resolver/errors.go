package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRegistrationPanic is wrapped by the error of a task registration that
// panicked. The panic value is deliberately dropped: it may
// hold request data or credentials.
var ErrRegistrationPanic = errors.New("registration panicked")

// BackoffError is returned for a thread key, without any registration call,
// while a key is backing off after a failed registration. It is temporary by
// nature: the same request succeeds once Until has passed and the endpoint
// recovers.
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
	// Err is the last failure, a *RegistrationError.
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

// Temporary reports true: the caller may retry after Until.
func (e *BackoffError) Temporary() bool { return true }

// RegistrationError is the error of a failed registration attempt, shared
// by every caller that waited for that attempt. It is also the Err of the
// [*BackoffError] returned while the key then backs off.
type RegistrationError struct {
	// Key is the key that failed to register (not a secret).
	Key string
	// Err is what the registration returned, ErrRegistrationPanic, or a
	// timeout wrapping context.DeadlineExceeded.
	Err error
}

// Error names the key and the cause.
func (e *RegistrationError) Error() string {
	return fmt.Sprintf("resolver: registering task for key %q: %v", e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *RegistrationError) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed: true for timeouts
// and for causes that themselves report Temporary() or Timeout() true;
// false otherwise, including panics.
func (e *RegistrationError) Temporary() bool {
	if errors.Is(e.Err, ErrRegistrationPanic) {
		return false
	}
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var tmp interface{ Temporary() bool }
	if errors.As(e.Err, &tmp) && tmp.Temporary() {
		return true
	}
	var to interface{ Timeout() bool }
	return errors.As(e.Err, &to) && to.Timeout()
}
