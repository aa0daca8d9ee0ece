package credentials

import (
	"context"
	"errors"
	"time"
)

// ErrTokenSetChanged is returned by [RefreshCoordinator.CompareAndSwap]
// when the stored token set is no longer the one the caller read: another
// refresher (another process, a Codex CLI, another replica) rotated the
// login meanwhile. The caller re-reads instead of overwriting a newer
// rotation.
var ErrTokenSetChanged = errors.New("credentials: the stored ChatGPT tokens changed meanwhile")

// TokenSet is the refreshable state of one ChatGPT login as it is stored
// and shared: the tokens of auth.json's "tokens" object and last_refresh.
// The three tokens are secrets.
type TokenSet struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	// AccountID is tokens.account_id as stored ("" when absent).
	AccountID   string
	LastRefresh time.Time
}

// RefreshCoordinator serialises the refreshes of one ChatGPT login among
// everyone who shares its single-use refresh token: goroutines, processes
// on one machine (auth.json and its lock file) or replicas of a fleet (a
// shared store). A refresher takes the lock, loads the current set, skips
// the network call when the set is already newer than the token it holds,
// and otherwise stores the rotated set with CompareAndSwap before it
// releases the lock. Implementations are safe for concurrent use.
type RefreshCoordinator interface {
	// Lock takes the login's exclusive refresh lock, waiting until ctx
	// ends. release must be called exactly once.
	Lock(ctx context.Context) (release func(), err error)
	// Load returns the login's current token set, or nil, nil when there
	// is none.
	Load(ctx context.Context) (*TokenSet, error)
	// CompareAndSwap stores next if the stored set still has prev's
	// access and refresh tokens, and returns [ErrTokenSetChanged]
	// otherwise, writing nothing. It is called while the caller holds
	// Lock (implementations may rely on that and not take it again).
	CompareAndSwap(ctx context.Context, prev, next *TokenSet) error
}
