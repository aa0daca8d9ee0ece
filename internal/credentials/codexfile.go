package credentials

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/agentauth/agentauth/internal/backoff"
	"github.com/gofrs/flock"
)

// AuthStorageLockFileName is agentauth's own lock file in $CODEX_HOME (an
// exclusive flock(2)/LockFileEx lock, mode 0600): every agentauth writer
// and refresher of auth.json takes it, so agentauth processes and
// goroutines never interleave a read-modify-write or spend one refresh
// token twice. The Codex CLI takes no lock: it truncates auth.json and
// writes it in place whenever it saves. agentauth stays correct beside it
// without a lock (see [RefreshingTokenSource]): a partly written file is
// read again, a file that went back to a refresh token already spent is
// never used and gets the newest rotation written back, and a newer one
// is adopted. The name is the one earlier agentauth versions used, so
// processes of both versions still serialise with each other during an
// upgrade.
const AuthStorageLockFileName = ".auth-storage.lock"

// ErrKeyringStorage is wrapped by the error [Load] returns when there is
// no auth.json because config.toml keeps Codex's credentials in the OS
// keyring, which agentauth does not read.
var ErrKeyringStorage = errors.New("the Codex credentials are kept in the OS keyring, which agentauth does not read")

// lockAuthStorage takes agentauth's lock ([AuthStorageLockFileName]) for
// the auth.json at path, creating the directory (0700) when missing, and waits until ctx
// ends.
func lockAuthStorage(ctx context.Context, path string) (release func(), err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &LoadError{Path: path, Err: err}
	}
	lock := flock.New(filepath.Join(dir, AuthStorageLockFileName))
	ok, err := lock.TryLockContext(ctx, lockRetryDelay)
	if err != nil || !ok {
		if err == nil {
			err = errors.New("lock not acquired")
		}
		return nil, fmt.Errorf("credentials: locking %s: %w", filepath.Join(dir, AuthStorageLockFileName), err)
	}
	return func() { _ = lock.Unlock() }, nil
}

// writeTarget is the file a write of path replaces: path itself, or, when
// path is a symlink (even a dangling one), the file the link chain ends
// at, so that the link is kept. A chain longer than 40 links is not
// followed further.
func writeTarget(path string) string {
	p := path
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p
		}
		link, err := os.Readlink(p)
		if err != nil {
			return p
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return p
}

// The Codex CLI saves auth.json in place: it truncates the file and
// writes the new document, with no lock and no rename, so a reader can
// see an empty file or the first part of one. A document that stops early
// and was modified less than tornReadFresh ago (truncating and writing
// both move the mtime) is read again, with a backoff from
// tornReadFirstDelay doubling to tornReadMaxDelay, for up to
// tornReadWindow: long enough for a slow write (a loaded machine, a slow
// disk) to finish. Any other parse failure, a file that ends early
// without having been touched for tornReadFresh included, is read again
// readRetries times, readRetryDelay apart (a writer may have replaced the
// whole document meanwhile), then reported.
const (
	tornReadWindow     = 2 * time.Second
	tornReadFresh      = time.Second
	tornReadFirstDelay = time.Millisecond
	tornReadMaxDelay   = 64 * time.Millisecond
	readRetries        = 4
	readRetryDelay     = 5 * time.Millisecond
)

// readAuthFileRetrying is readAuthFileRetryingCtx without a context.
func readAuthFileRetrying(path string) (*AuthFile, os.FileInfo, error) {
	return readAuthFileRetryingCtx(context.Background(), path)
}

// readAuthFileRetryingCtx is readAuthFile that retries a parse failure as
// the constants above say, and stops early when ctx ends (returning the
// last parse error). An error that persists while the file kept changing,
// or while it kept stopping early, is marked temporary (see
// [LoadError.Temporary]): it is a file being rewritten, not a broken one.
func readAuthFileRetryingCtx(ctx context.Context, path string) (*AuthFile, os.FileInfo, error) {
	var prev os.FileInfo
	changed := false
	start := time.Now()
	torn := backoff.Policy{Initial: tornReadFirstDelay, Max: tornReadMaxDelay}
	var delay time.Duration // the last torn-read wait; 0: none yet
	others := 0
	for {
		af, fi, err := readAuthFile(path)
		if err == nil || !errors.Is(err, ErrInvalidAuthFile) || errors.Is(err, fs.ErrNotExist) {
			return af, fi, err
		}
		cur, serr := os.Stat(path)
		if serr == nil && prev != nil && !sameVersion(prev, cur) {
			changed = true
		}
		prev = cur
		wait := readRetryDelay
		isTorn := errors.Is(err, errEndOfInput) && cur != nil && time.Since(cur.ModTime()) < tornReadFresh
		if isTorn {
			delay = torn.Next(delay)
			wait = delay
		} else {
			others++
		}
		last := others > readRetries || (isTorn && time.Since(start)+wait > tornReadWindow)
		if !last {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				last = true
			}
		}
		if last {
			var le *LoadError
			if changed && errors.As(err, &le) {
				le.temporary = true
			}
			return nil, nil, err
		}
	}
}

// keyringStorageError returns an error wrapping [ErrKeyringStorage] when
// home's config.toml sets cli_auth_credentials_store to "keyring" or
// "auto" (or "ephemeral", which keeps them in Codex's memory only), and
// nil otherwise. A config.toml that cannot be read says nothing here; the
// feature-flag loader reports its errors.
func keyringStorageError(home string) error {
	path := filepath.Join(home, "config.toml")
	var cfg struct {
		Store string `toml:"cli_auth_credentials_store"`
	}
	if _, err := toml.DecodeFile(path, &cfg); err != nil {
		return nil
	}
	switch mode := strings.ToLower(strings.TrimSpace(cfg.Store)); mode {
	case "keyring", "auto", "ephemeral":
		return &LoadError{Path: filepath.Join(home, AuthFileName), Err: fmt.Errorf(
			"%w (config.toml: cli_auth_credentials_store = %q); set cli_auth_credentials_store = \"file\" in %s and log in again with `codex login` so that auth.json is written",
			ErrKeyringStorage, mode, path)}
	}
	return nil
}
