package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth/internal/credentials"
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
	// ErrStaleIdentity: the AuthAPI refused task registration for an agent
	// runtime it no longer knows (404) or whose signature it will not take
	// (401). An identity provisioned from a ChatGPT login is replaced by
	// the transport; one the caller supplied must be replaced by the
	// caller. Never temporary.
	ErrStaleIdentity = errStaleIdentity
)

// Errors of New, NewClient and Detect.
var (
	// ErrNoCredential: neither the Codex home nor the environment holds a
	// credential, and Options.AllowNoCredential is not set.
	ErrNoCredential = errors.New("transport: no credential: log in with the Codex CLI (codex login), or set CODEX_API_KEY or OPENAI_API_KEY")
	// ErrNotChatGPTLogin: the Codex login cannot call the ChatGPT backend
	// (a Bedrock login, or headers a host provides).
	ErrNotChatGPTLogin = errNotChatGPTLogin
	// ErrInvalidOptions: settings that contradict each other or cannot
	// work, such as a plain-http BaseURL on a host that is not loopback.
	ErrInvalidOptions = errors.New("transport: invalid options")
	// ErrTokenSetChanged is what a [RefreshCoordinator]'s CompareAndSwap
	// returns when the stored set no longer holds the tokens it was given:
	// another process refreshed first, and its set is loaded instead.
	ErrTokenSetChanged = errTokenSetChanged
)

// errStaleIdentity is permanent for IsTemporary.
var errStaleIdentity error = temporary.Permanent("transport: agent identity refused: unknown or revoked, it must be replaced")

// The engine's sentinels, named above without showing where they live.
var (
	errNotChatGPTLogin = credentials.ErrNotChatGPTLogin
	errTokenSetChanged = credentials.ErrTokenSetChanged
)

// Error is returned by [Transport.RoundTrip] when the request could not be
// authenticated. It never contains a credential. Use errors.Is with
// ErrCredential, ErrRegistration, ErrProvisioning, ErrStaleIdentity or
// ErrInvalidThreadKey to classify it, and [Error.Temporary] (or
// [IsTemporary]) to decide whether a retry may succeed.
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

// Unwrap returns the error's kind (one of the Err sentinels) and its
// cause, so errors.Is matches both and errors.As reaches the cause.
func (e *Error) Unwrap() []error { return []error{e.kind, e.Err} }

// Temporary reports whether the same request may succeed later: the cause
// is a 429, a 5xx, a timeout, a connection error, or a backoff in progress
// after one of those. Invalid thread keys, permanent rejections (and the
// backoff after one) and canceled contexts are not temporary.
func (e *Error) Temporary() bool { return IsTemporary(e.Err) }

// IsTemporary reports whether err may go away on its own, so a retry after
// a backoff is reasonable. It is the module's one rule, behind every
// Temporary method of its errors: a canceled context is never temporary;
// otherwise the outermost error that classifies itself (Temporary or
// Timeout) decides (a registration's HTTP status or network failure does;
// a backoff defers to the failure behind it); an error nothing classifies
// is temporary only if it wraps context.DeadlineExceeded. A 429 or 5xx is
// temporary, a 401, 403 or a spent login is not.
func IsTemporary(err error) bool { return temporary.Is(err) }

// staleIdentityError is the cause of an ErrRegistration that matches
// ErrStaleIdentity: it names the refused runtime (not a secret) and status.
type staleIdentityError struct {
	runtimeID  string
	statusCode int
	err        error
}

func (e *staleIdentityError) Error() string {
	return fmt.Sprintf("agent runtime %q was refused by the AuthAPI (status %d): the identity is unknown or revoked and must be replaced: %v",
		e.runtimeID, e.statusCode, e.err)
}

func (e *staleIdentityError) Unwrap() []error { return []error{ErrStaleIdentity, e.err} }

// Temporary is false: registering again with the same identity fails again.
func (e *staleIdentityError) Temporary() bool { return false }

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
