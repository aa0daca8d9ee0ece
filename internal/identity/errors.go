package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Sentinel errors wrapped in [RegistrationError.Err]. Match them with
// [errors.Is]; none of them is temporary.
var (
	// ErrMissingTaskID: a task registration response carried no usable task
	// id (absent, null or empty in all four accepted members).
	ErrMissingTaskID = errors.New("identity: registration response omitted the task id")
	// ErrMissingRuntimeID: an agent registration response carried no usable
	// agent_runtime_id.
	ErrMissingRuntimeID = errors.New("identity: registration response omitted the agent runtime id")
	// ErrMalformedResponse: a 2xx response whose body is not the JSON the
	// protocol defines.
	ErrMalformedResponse = errors.New("identity: malformed response")
	// ErrResponseTooLarge: the response body exceeded
	// [Client.MaxResponseBytes].
	ErrResponseTooLarge = errors.New("identity: response body too large")
)

// Operation names used in [RegistrationError.Op].
const (
	OpTaskRegistration  = "task registration"
	OpAgentRegistration = "agent registration"
	OpJWKSFetch         = "JWKS fetch"
)

// maxErrorBodyChars bounds how much of a server's error body is kept, as the
// Codex CLI does.
const maxErrorBodyChars = 512

// RegistrationError describes a failed call to the AuthAPI or JWKS endpoint.
// Every error returned by the [Client] methods is a *RegistrationError, so
// callers can use [errors.As] and consult [RegistrationError.Temporary].
//
// The error text never contains a credential: request signatures and access
// tokens are removed from quoted bodies, and the body is cut to 512
// characters.
type RegistrationError struct {
	// Op names the call: [OpTaskRegistration], [OpAgentRegistration] or
	// [OpJWKSFetch].
	Op string
	// StatusCode is the HTTP status of a non-2xx response, 0 when the call
	// failed otherwise (transport error, bad 2xx response, bad input).
	StatusCode int
	// Body is at most 512 characters of a non-2xx response body, followed by
	// "..." when it was cut.
	Body string
	// RetryAfter is the server's Retry-After (seconds or HTTP date), 0 when
	// absent or unparsable.
	RetryAfter time.Duration
	// Attempts is the number of HTTP attempts made, when more than one
	// attempt was allowed (agent registration); 0 or 1 otherwise.
	Attempts int
	// Err is the underlying cause: a transport error, a context error, or one
	// of the sentinels ([ErrMissingTaskID], [ErrMalformedResponse],
	// [ErrResponseTooLarge], [ErrSealedTaskID], ...). Nil for a plain non-2xx
	// status.
	Err error
}

// Error describes the failure, e.g.
// "identity: agent task registration failed with status 503: <body>".
func (e *RegistrationError) Error() string {
	var b strings.Builder
	b.WriteString("identity: ")
	switch e.Op {
	case OpTaskRegistration:
		b.WriteString("agent task registration")
	case "":
		b.WriteString("request")
	default:
		b.WriteString(e.Op)
	}
	b.WriteString(" failed")
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " with status %d", e.StatusCode)
		if e.Body != "" {
			b.WriteString(": ")
			b.WriteString(e.Body)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "identity: "))
	}
	return b.String()
}

// Unwrap returns [RegistrationError.Err].
func (e *RegistrationError) Unwrap() error { return e.Err }

// Temporary reports whether the failure may go away on its own, so a retry
// (after a backoff) is reasonable: HTTP 429, any 5xx, the call's own timeout,
// network timeouts and connection errors. Other 4xx statuses, malformed or
// oversized responses, missing ids, undecryptable task ids, TLS certificate
// failures and a caller context that was canceled or ran out are permanent.
func (e *RegistrationError) Temporary() bool {
	if e == nil {
		return false
	}
	var cd *callerDoneError
	if errors.As(e.Err, &cd) {
		return false
	}
	if e.StatusCode != 0 {
		return e.StatusCode == http.StatusTooManyRequests || (e.StatusCode >= 500 && e.StatusCode <= 599)
	}
	return isTemporaryCause(e.Err)
}

func isTemporaryCause(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, permanent := range []error{
		ErrMissingTaskID, ErrMissingRuntimeID, ErrMalformedResponse, ErrResponseTooLarge,
		ErrSealedTaskID, ErrInvalidKey, ErrInvalidJWKS, errInvalidRequest,
	} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	var (
		certErr     *tls.CertificateVerificationError
		authorityEr x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
	)
	if errors.As(err, &certErr) || errors.As(err, &authorityEr) || errors.As(err, &hostnameErr) || errors.As(err, &invalidErr) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // the call's own timeout: a caller deadline is marked callerDone
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	for _, connErr := range []error{
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		io.ErrUnexpectedEOF, io.EOF,
	} {
		if errors.Is(err, connErr) {
			return true
		}
	}
	return false
}

// errInvalidRequest marks bad arguments or configuration: permanent, and
// raised before any network call.
var errInvalidRequest = errors.New("identity: invalid request")

// callerDoneError marks a failure caused by the caller's own context ending
// (or by the caller's Sleep hook giving up), which no retry can fix. It adds
// nothing to the text and unwraps to the cause, so errors.Is(err,
// context.Canceled) keeps working.
type callerDoneError struct{ err error }

func (e *callerDoneError) Error() string { return e.err.Error() }
func (e *callerDoneError) Unwrap() error { return e.err }

// ensureIs returns err when it already matches target, and otherwise an
// error that matches both.
func ensureIs(err, target error) error {
	if errors.Is(err, target) {
		return err
	}
	return fmt.Errorf("%w: %w", target, err)
}

// errorBody renders a non-2xx body for an error: invalid UTF-8 replaced,
// every secret removed, then cut to 512 characters plus "...".
func errorBody(data []byte, secrets ...string) string {
	s := strings.ToValidUTF8(string(data), "\uFFFD")
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return truncateChars(s, maxErrorBodyChars)
}

// truncateChars cuts s to at most n characters (runes), appending "..." when
// it cut anything.
func truncateChars(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n {
			break
		}
		count++
	}
	return s[:i] + "..."
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// relative to now. Absent, malformed or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
