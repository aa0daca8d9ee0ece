package credentials

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
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
//
// The Codex CLI may save auth.json at any moment from a copy it loaded
// earlier, putting back a refresh token that was already exchanged. Every
// coordinator of one auth.json in a process remembers the newest set
// stored or read there and the refresh tokens it replaced; when the file
// goes back to an older set of the same login, Load and CompareAndSwap
// treat the newest set as the stored one (so no source sends the spent
// token), and it is written back over the stale copy as soon as the lock
// is free or with the next swap.
type AuthFileCoordinator struct {
	store *FileStore
	mem   *authFileMemory

	mu   sync.Mutex
	back *[2]TokenSet // a stale copy and the newest set to write over it at the next release
}

// NewAuthFileCoordinator returns the coordinator of codexHome/auth.json.
func NewAuthFileCoordinator(codexHome string) *AuthFileCoordinator {
	path := filepath.Join(codexHome, AuthFileName)
	return &AuthFileCoordinator{store: NewFileStore(path), mem: memoryFor(path)}
}

// Path returns the auth.json path.
func (c *AuthFileCoordinator) Path() string { return c.store.Path() }

// Lock takes agentauth's exclusive lock on the file's directory.
// Before it releases the lock, release writes the newest set back over a
// stale copy that Load found meanwhile.
func (c *AuthFileCoordinator) Lock(ctx context.Context) (func(), error) {
	release, err := lockAuthStorage(ctx, c.store.path)
	if err != nil {
		return nil, err
	}
	return func() {
		c.writeBackPending()
		release()
	}, nil
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
	file := tokenSetOf(af)
	set, behind := c.mem.effective(file)
	if behind {
		c.writeBack(file, set)
	}
	return set, nil
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
// file still holds prev's access and refresh tokens (or a stale copy of an
// older set while prev is the newest one, see the type doc), and returns
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
	err := c.store.updateLocked(func(af *AuthFile) error {
		cur, _ := c.mem.effective(tokenSetOf(af))
		if cur == nil || cur.AccessToken != prev.AccessToken || cur.RefreshToken != prev.RefreshToken {
			return ErrTokenSetChanged
		}
		setTokens(af, next)
		return nil
	})
	if err == nil {
		c.mem.stored(prev, next)
	}
	return err
}

// setTokens writes set's tokens, account id (when set) and last_refresh
// (now when zero) into af, which holds a ChatGPT login.
func setTokens(af *AuthFile, set *TokenSet) {
	af.Tokens.IDToken = set.IDToken
	af.Tokens.AccessToken = set.AccessToken
	af.Tokens.RefreshToken = set.RefreshToken
	if set.AccountID != "" {
		af.Tokens.AccountID = set.AccountID
	}
	t := time.Now().UTC().Truncate(time.Second)
	if !set.LastRefresh.IsZero() {
		t = set.LastRefresh.UTC()
	}
	af.LastRefresh = &t
}

var _ RefreshCoordinator = (*AuthFileCoordinator)(nil)
