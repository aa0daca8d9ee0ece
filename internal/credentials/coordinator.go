package credentials

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
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
// The three tokens are secrets and are redacted in fmt, log/slog and
// encoding/json output, so a coordinator that logs or wraps what it swaps
// leaks nothing. A coordinator that persists a set encodes the fields
// itself (its own struct), never the TokenSet with encoding/json.
type TokenSet struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	// AccountID is tokens.account_id as stored ("" when absent).
	AccountID   string
	LastRefresh time.Time
}

// String describes the set with its tokens redacted.
func (t TokenSet) String() string {
	var b strings.Builder
	b.WriteString("credentials.TokenSet{AccountID:" + strconv.Quote(t.AccountID))
	if !t.LastRefresh.IsZero() {
		b.WriteString(" LastRefresh:" + t.LastRefresh.UTC().Format(time.RFC3339))
	}
	b.WriteString(" IDToken:" + redact(t.IDToken))
	b.WriteString(" AccessToken:" + redact(t.AccessToken))
	b.WriteString(" RefreshToken:" + redact(t.RefreshToken))
	b.WriteString("}")
	return b.String()
}

// GoString is [TokenSet.String], so %#v redacts too.
func (t TokenSet) GoString() string { return t.String() }

// Format makes every fmt verb print [TokenSet.String].
func (t TokenSet) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue logs the account and metadata, never a token.
func (t TokenSet) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("account_id", t.AccountID),
		slog.Bool("has_id_token", t.IDToken != ""),
		slog.Bool("has_access_token", t.AccessToken != ""),
		slog.Bool("has_refresh_token", t.RefreshToken != ""),
	}
	if !t.LastRefresh.IsZero() {
		attrs = append(attrs, slog.Time("last_refresh", t.LastRefresh))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes the redacted summary of [TokenSet.LogValue], so
// json.Marshal and log/slog's JSON handler never print a token. It is not
// a storage format.
func (t TokenSet) MarshalJSON() ([]byte, error) { return logValueJSON(t.LogValue()) }

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
