package credentials

import (
	"errors"
	"strconv"
	"strings"
)

// ErrLoginExpired is matched (errors.Is) by every permanent refresh
// failure: the login cannot be refreshed any more and the user must log in
// again. The *[RefreshError] says why.
var ErrLoginExpired = errors.New("credentials: the ChatGPT login can no longer be refreshed; log in again (codex login)")

// Reasons of a permanent [RefreshError].
const (
	ReasonRefreshTokenExpired     = "refresh_token_expired"
	ReasonRefreshTokenReused      = "refresh_token_reused"
	ReasonRefreshTokenInvalidated = "refresh_token_invalidated"
	// ReasonAppSessionTerminated: the ChatGPT session the login belongs
	// to was ended (a sign-out elsewhere, a revoked app session).
	ReasonAppSessionTerminated = "app_session_terminated"
	// ReasonInvalidRefreshToken: the endpoint does not accept the refresh
	// token at all.
	ReasonInvalidRefreshToken = "invalid_refresh_token"
	ReasonUnauthorized        = "unauthorized"     // 401 with another or no code
	ReasonInvalidGrant        = "invalid_grant"    // 400 invalid_grant (RFC 6749)
	ReasonAccountChanged      = "account_changed"  // the store or the token answer names another account or user
	ReasonNoRefreshToken      = "no_refresh_token" // the login has no refresh token
	ReasonNoLogin             = "no_login"         // the store holds no ChatGPT login
)

// RefreshError is a failed ChatGPT token refresh. It never holds a token or
// the response body, only the status and the error code the endpoint gave.
type RefreshError struct {
	// Permanent is set when refreshing again cannot help (see
	// [ErrLoginExpired]); otherwise the failure is temporary and the
	// source retries after a jittered backoff.
	Permanent bool
	// Reason is one of the Reason constants for a permanent failure, or
	// the lower-cased error code of the response ("" when none).
	Reason string
	// Status is the HTTP status of the token endpoint, 0 when there was no
	// response.
	Status int
	// Err is the cause (a network error, for example), or nil.
	Err error
}

// Error explains the failure; a permanent one tells the user to log in
// again and names the cause.
func (e *RefreshError) Error() string {
	if e.Permanent {
		why := map[string]string{
			ReasonRefreshTokenExpired:     "the refresh token has expired",
			ReasonRefreshTokenReused:      "the refresh token was already used",
			ReasonRefreshTokenInvalidated: "the refresh token was revoked",
			ReasonAppSessionTerminated:    "the ChatGPT session of this login was ended",
			ReasonInvalidRefreshToken:     "the token endpoint does not accept the refresh token",
			ReasonUnauthorized:            "the token endpoint rejected the refresh token",
			ReasonInvalidGrant:            "the token endpoint rejected the refresh token (invalid_grant)",
			ReasonAccountChanged:          "the login now belongs to another ChatGPT account or user (auth.json holds another login, or the token endpoint answered with another one's tokens)",
			ReasonNoRefreshToken:          "the login has no refresh token",
			ReasonNoLogin:                 "there is no ChatGPT login any more",
		}[e.Reason]
		if why == "" {
			why = "the token endpoint answered " + strconv.Quote(e.Reason)
		}
		return "credentials: the ChatGPT login can no longer be refreshed: " + why + "; log in again (codex login)"
	}
	var b strings.Builder
	b.WriteString("credentials: refreshing the ChatGPT token failed")
	if e.Status != 0 {
		b.WriteString(" (HTTP " + strconv.Itoa(e.Status))
		if e.Reason != "" {
			b.WriteString(", " + strconv.Quote(e.Reason))
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": " + truncate(e.Err.Error(), maxQuotedError))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *RefreshError) Unwrap() error { return e.Err }

// Is matches [ErrLoginExpired] for a permanent failure.
func (e *RefreshError) Is(target error) bool { return e.Permanent && target == ErrLoginExpired }

// Temporary reports whether a later refresh may succeed.
func (e *RefreshError) Temporary() bool { return !e.Permanent }

func isPermanent(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && re.Permanent
}
