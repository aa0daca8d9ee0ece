package taskcache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy is how one registration is run and retried, as
// CacheOptions configures it: the timeout of an attempt, the
// jittered backoff after consecutive failures and the clock deadlines are
// read on. The thread cache and the process task share it, so a thread and
// the process task of one transport fail and retry alike.
type Policy struct {
	timeout time.Duration
	backoff backoffPolicy
	now     func() time.Time
}

// NewPolicy validates opts (every default applied, see
// CacheOptions) and returns their registration policy. The
// capacity and idle-TTL fields are validated but not part of it.
func NewPolicy(opts CacheOptions) (Policy, error) {
	o, err := withDefaults(opts)
	if err != nil {
		return Policy{}, err
	}
	return policyOf(o), nil
}

// policyOf is the policy of options that withDefaults has completed.
func policyOf(o CacheOptions) Policy {
	return Policy{
		timeout: o.Timeout,
		backoff: backoffPolicy{initial: o.BackoffInitial, max: o.BackoffMax, jitter: o.BackoffJitter, rand: o.Rand},
		now:     o.Now,
	}
}

// Now reads the policy's clock.
func (p Policy) Now() time.Time { return p.now() }

// SameSchedule reports whether p and q time out and back off alike. Their
// clocks and jitter sources are not compared: functions cannot be.
func (p Policy) SameSchedule(q Policy) bool {
	return p.timeout == q.timeout && p.backoff.initial == q.backoff.initial &&
		p.backoff.max == q.backoff.max && p.backoff.jitter == q.backoff.jitter
}

// Wait is the backoff after the n-th consecutive failure err (see
// backoffPolicy.wait).
func (p Policy) Wait(n int, err error) time.Duration { return p.backoff.wait(n, err) }

// Register runs fn once on a context that keeps parent's values but none of
// its cancellation, bounded by the policy's timeout: the attempt is shared by
// every caller waiting for it, so no one caller may end it. A timeout
// wraps context.DeadlineExceeded, a panic becomes
// ErrRegistrationPanic (panicked reports it; the value is dropped,
// it may hold credentials), and an empty id is an error.
func (p Policy) Register(parent context.Context, fn func(context.Context) (string, error)) (id string, err error, panicked bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), p.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			id, err, panicked = "", ErrRegistrationPanic, true
		}
	}()
	id, err = fn(ctx)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = &timeoutError{after: p.timeout, err: err}
	case err == nil && id == "":
		err = errEmptyTaskID
	}
	if err != nil {
		id = ""
	}
	return id, err, false
}

// WithAttempt records in a registration context which consecutive attempt
// for its key this is, for [Attempt].
func WithAttempt(ctx context.Context, n int) context.Context { return withAttempt(ctx, n) }

// timeoutError is a registration that ran out of its own time. It is
// temporary whatever its cause says: the cause may call the deadline its
// caller's (the registration cannot tell its context from a caller's), but
// the next attempt gets a fresh one.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	if errors.Is(e.err, context.DeadlineExceeded) {
		return fmt.Sprintf("attempt timed out after %v: %v", e.after, e.err)
	}
	return fmt.Sprintf("attempt timed out after %v: %v: %v", e.after, context.DeadlineExceeded, e.err)
}

// Unwrap matches context.DeadlineExceeded and the cause.
func (e *timeoutError) Unwrap() []error { return []error{context.DeadlineExceeded, e.err} }

// Temporary is true: a fresh attempt has a fresh deadline.
func (e *timeoutError) Temporary() bool { return true }

// Timeout is true.
func (e *timeoutError) Timeout() bool { return true }
