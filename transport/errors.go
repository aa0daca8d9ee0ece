package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth/internal/temporary"
	"github.com/agentauth/agentauth/resolver"
)

// Error kinds, matched with errors.Is against an *Error.
var (
	// ErrCredential: the credential could not be obtained (token source
	// failure, bad stored identity, invalid header value).
	ErrCredential = errors.New("transport: credential unavailable")
	// ErrRegistration: a task registration failed or is backing off.
	ErrRegistration = errors.New("transport: task registration failed")
	// ErrProvisioning: provisioning an agent identity from a ChatGPT login
	// failed permanently (for example 403).
	ErrProvisioning = errors.New("transport: agent provisioning failed")
)

// Error is returned by [Transport.RoundTrip] when the request could not be
// authenticated. It never contains a credential. Use errors.Is with
// ErrCredential, ErrRegistration, ErrProvisioning or ErrInvalidThreadKey to
// classify it, errors.As to reach the cause (for example an
// *identity.RegistrationError), and [Error.Temporary] to decide whether a
// retry may succeed.
type Error struct {
	Mode resolver.Mode // the mode being attempted
	kind error
	Err  error
}

// Error describes the failure by kind, mode and cause; it never contains a
// credential.
func (e *Error) Error() string {
	return fmt.Sprintf("%v (%s): %v", e.kind, e.Mode, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the error's kind.
func (e *Error) Is(target error) bool { return target == e.kind }

// Temporary reports whether the same request may succeed later: the cause
// is a 429, a 5xx, a timeout, a connection error, or a backoff in progress
// after one of those. Invalid thread keys, permanent rejections (and the
// backoff after one) and canceled contexts are not temporary.
func (e *Error) Temporary() bool { return IsTemporary(e.Err) }

// IsTemporary reports whether err may go away on its own, so a retry after
// a backoff is reasonable. It is the module's one rule, also behind the
// Temporary methods of [Error], taskcache.AttemptError and
// taskcache.BackoffError: a canceled context is never temporary; otherwise
// the outermost error that classifies itself (Temporary or Timeout) decides
// (identity.RegistrationError does for HTTP statuses and network failures,
// a backoff defers to the failure behind it); an error nothing classifies is
// temporary only if it wraps context.DeadlineExceeded.
func IsTemporary(err error) bool { return temporary.Is(err) }

// StaleIdentityError is the cause of an [ErrRegistration] when the AuthAPI
// refuses task registration for an agent runtime it no longer knows (404)
// or whose signature it will not take (401). For an identity provisioned
// from a ChatGPT login the transport first provisions a new one; an
// identity the caller supplied must be replaced by the caller. It is never
// temporary.
type StaleIdentityError struct {
	RuntimeID  string // the rejected agent runtime (not a secret)
	StatusCode int
	Err        error
}

func (e *StaleIdentityError) Error() string {
	return fmt.Sprintf("agent runtime %q was refused by the AuthAPI (status %d): the identity is unknown or revoked and must be replaced: %v",
		e.RuntimeID, e.StatusCode, e.Err)
}

// Unwrap returns the registration failure.
func (e *StaleIdentityError) Unwrap() error { return e.Err }

// Temporary is false: registering again with the same identity fails again.
func (e *StaleIdentityError) Temporary() bool { return false }

func newError(kind error, mode resolver.Mode, err error) *Error {
	return &Error{Mode: mode, kind: kind, Err: err}
}

// RetryPolicy wraps a retry policy with the signature of
// go-retryablehttp's CheckRetry so that authentication errors this transport
// marks as permanent are not retried (retrying would only hammer the
// identity service), while temporary ones defer to next. Pass
// retryablehttp.DefaultRetryPolicy as next.
func RetryPolicy(next func(ctx context.Context, resp *http.Response, err error) (bool, error)) func(ctx context.Context, resp *http.Response, err error) (bool, error) {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		var ae *Error
		if errors.As(err, &ae) && !ae.Temporary() {
			return false, err
		}
		return next(ctx, resp, err)
	}
}
