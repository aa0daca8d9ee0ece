package credentials

import (
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// When a ChatGPT access token is refreshed.
const (
	// RefreshWindow: a token whose JWT exp is this close is refreshed,
	// as the Codex CLI does. A short-lived token uses a smaller window,
	// a quarter of its lifetime (see [RefreshWindowFor]), so that it is
	// not due from the moment it is issued.
	RefreshWindow = 5 * time.Minute
	// StaleAfter: a token without a readable exp is refreshed when
	// last_refresh is this old (or absent).
	StaleAfter = 8 * 24 * time.Hour
	// DefaultRefreshTimeout bounds one refresh: waiting for the lock,
	// reading the store and the token request.
	DefaultRefreshTimeout = 30 * time.Second
)

// RefreshWindowFor returns how long before exp a token issued at iat is
// due: [RefreshWindow], or a quarter of the token's lifetime (exp − iat)
// when that is shorter. Real ChatGPT access tokens live for days, so they
// are due 5 minutes ahead as in the Codex CLI; a token living 2 s (a test
// server, a short-lived deployment) is due in its last 500 ms instead of
// always, which would make every request start a token request. When iat
// is unknown (zero) or not before exp, the lifetime is unknown and the
// window is RefreshWindow.
func RefreshWindowFor(iat, exp time.Time) time.Duration {
	if iat.IsZero() || exp.IsZero() || !iat.Before(exp) {
		return RefreshWindow
	}
	return min(RefreshWindow, exp.Sub(iat)/4)
}

type refreshSnap struct {
	set TokenSet
	tok *Token
	exp time.Time // the access token's exp; zero when unknown
	iat time.Time // the access token's iat; zero when unknown
	// window is how long before exp the token is due.
	window time.Duration
	// heldUntil (local clock) is set on a token the endpoint has just
	// issued to this source: until then it is neither due nor expired,
	// whatever the clocks say (see refresh_clock.go).
	heldUntil time.Time
}

// newRefreshSnap derives the token, routing and expiry of a token set: the
// account is the stored account_id, else the id token's (then the access
// token's) chatgpt_account_id; user and FedRAMP come from the id token,
// the user falling back to the access token's claim.
func newRefreshSnap(set TokenSet) *refreshSnap {
	id, _ := parseIDToken(set.IDToken)
	at := accessTokenClaims(set.AccessToken)
	tok := &Token{AccessToken: identity.Secret(set.AccessToken), AccountID: set.AccountID, UserID: id.UserID, FedRAMP: id.FedRAMP}
	if tok.AccountID == "" {
		tok.AccountID = id.AccountID
	}
	if tok.AccountID == "" {
		tok.AccountID = at.AccountID
	}
	if tok.UserID == "" {
		tok.UserID = at.UserID
	}
	if set.IDToken == "" {
		tok.FedRAMP = at.FedRAMP
	}
	return &refreshSnap{set: set, tok: tok, exp: at.Expiry, iat: at.IssuedAt, window: RefreshWindowFor(at.IssuedAt, at.Expiry)}
}

// due reports whether the token should be refreshed at t: exp is judged
// by the endpoint's clock, last_refresh (which this library writes by
// the local clock) by the local one.
func (r *refreshSnap) due(t instant) bool {
	if t.local.Before(r.heldUntil) {
		return false
	}
	if !r.exp.IsZero() {
		return !t.server.Before(r.exp.Add(-r.window))
	}
	return r.set.LastRefresh.IsZero() || t.local.Sub(r.set.LastRefresh) >= StaleAfter
}

func (r *refreshSnap) expired(t instant) bool {
	return !r.exp.IsZero() && !t.local.Before(r.heldUntil) && !t.server.Before(r.exp)
}

// mustWait: the token cannot be used before the refresh ends (expired, or
// stale with an unknown expiry).
func (r *refreshSnap) mustWait(t instant) bool {
	return r.expired(t) || (r.exp.IsZero() && r.due(t))
}
