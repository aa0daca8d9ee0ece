package credentials

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"
)

// AuthFileCoordinator is the [RefreshCoordinator] of the ChatGPT login in
// one auth.json, shared with the Codex CLI: Lock takes agentauth's own
// lock ([AuthStorageLockFileName] in the file's directory; the Codex CLI
// takes none, see [RefreshingTokenSource] for how a refresh stays safe
// beside it), Load reads the
// tokens object and last_refresh, and CompareAndSwap rewrites only those
// members (every other member, known or not, is kept; the write is atomic,
// mode 0600). Create it with [NewAuthFileCoordinator].
type AuthFileCoordinator struct {
	store *FileStore
}

// NewAuthFileCoordinator returns the coordinator of codexHome/auth.json.
func NewAuthFileCoordinator(codexHome string) *AuthFileCoordinator {
	return &AuthFileCoordinator{store: NewFileStore(filepath.Join(codexHome, AuthFileName))}
}

// Path returns the auth.json path.
func (c *AuthFileCoordinator) Path() string { return c.store.Path() }

// Lock takes agentauth's exclusive lock on the file's directory.
func (c *AuthFileCoordinator) Lock(ctx context.Context) (func(), error) {
	return lockAuthStorage(ctx, c.store.path)
}

// Load returns the ChatGPT tokens of auth.json, or nil, nil when the file
// is missing or holds no ChatGPT login this library may refresh (tokens
// with auth_mode chatgptAuthTokens belong to an outside host; follow them
// with [NewFileTokenSource]). A read that catches the file being
// rewritten in place is retried, for up to two seconds while ctx allows.
func (c *AuthFileCoordinator) Load(ctx context.Context) (*TokenSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	af, _, err := readAuthFileRetryingCtx(ctx, c.store.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, withPath(err, c.store.path)
	}
	return tokenSetOf(af), nil
}

// tokenSetOf returns the refreshable ChatGPT login of af. Tokens an
// outside host owns and refreshes (auth_mode chatgptAuthTokens) are not
// one: refreshing them would burn the host's refresh token.
func tokenSetOf(af *AuthFile) *TokenSet {
	switch af.AuthMode {
	case "", AuthModeChatGPT:
	default:
		return nil
	}
	if af.Tokens == nil || af.Tokens.AccessToken == "" {
		return nil
	}
	set := &TokenSet{
		IDToken:      af.Tokens.IDToken,
		AccessToken:  af.Tokens.AccessToken,
		RefreshToken: af.Tokens.RefreshToken,
		AccountID:    af.Tokens.AccountID,
	}
	if af.LastRefresh != nil {
		set.LastRefresh = *af.LastRefresh
	}
	return set
}

// CompareAndSwap writes next's tokens, account id and last_refresh if the
// file still holds prev's access and refresh tokens, and returns
// [ErrTokenSetChanged] otherwise. The caller holds Lock (the refresh
// protocol calls it between Lock and release); it re-reads the file under
// that lock, so a rotation written by anyone who takes the lock is never
// rolled back.
func (c *AuthFileCoordinator) CompareAndSwap(ctx context.Context, prev, next *TokenSet) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if prev == nil || next == nil {
		return errors.New("credentials: CompareAndSwap: nil token set")
	}
	return c.store.updateLocked(func(af *AuthFile) error {
		cur := tokenSetOf(af)
		if cur == nil || cur.AccessToken != prev.AccessToken || cur.RefreshToken != prev.RefreshToken {
			return ErrTokenSetChanged
		}
		af.Tokens.IDToken = next.IDToken
		af.Tokens.AccessToken = next.AccessToken
		af.Tokens.RefreshToken = next.RefreshToken
		if next.AccountID != "" {
			af.Tokens.AccountID = next.AccountID
		}
		if !next.LastRefresh.IsZero() {
			t := next.LastRefresh.UTC()
			af.LastRefresh = &t
		} else {
			t := time.Now().UTC().Truncate(time.Second)
			af.LastRefresh = &t
		}
		return nil
	})
}

var _ RefreshCoordinator = (*AuthFileCoordinator)(nil)
