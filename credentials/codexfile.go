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
	"github.com/gofrs/flock"
)

// AuthStorageLockFileName is the lock file Codex takes (an exclusive
// flock(2)/LockFileEx lock, mode 0600) in $CODEX_HOME around every write
// of auth.json. agentauth's writers and refreshers take the same lock, so
// a Codex CLI running beside a service and the service never interleave a
// read-modify-write.
const AuthStorageLockFileName = ".auth-storage.lock"

// ErrKeyringStorage is wrapped by the error [Load] returns when there is
// no auth.json because config.toml keeps Codex's credentials in the OS
// keyring, which agentauth does not read.
var ErrKeyringStorage = errors.New("the Codex credentials are kept in the OS keyring, which agentauth does not read")

// lockAuthStorage takes Codex's auth storage lock for the auth.json at
// path, creating the directory (0700) when missing, and waits until ctx
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

// Reads of a file that another process rewrites in place (older Codex
// versions truncate and write auth.json) can see a partial document. Such
// a parse failure is retried a few times before it is reported.
const (
	readRetries    = 4
	readRetryDelay = 5 * time.Millisecond
)

// readAuthFileRetrying is readAuthFile that retries a parse failure. An
// error that persists while the file kept changing is marked temporary
// (see [LoadError.Temporary]): it is a file being rewritten, not a broken
// one.
func readAuthFileRetrying(path string) (*AuthFile, os.FileInfo, error) {
	var prev os.FileInfo
	changed := false
	for i := 0; ; i++ {
		af, fi, err := readAuthFile(path)
		if err == nil || !errors.Is(err, ErrInvalidAuthFile) || errors.Is(err, fs.ErrNotExist) {
			return af, fi, err
		}
		cur, serr := os.Stat(path)
		if serr == nil && prev != nil && !sameVersion(prev, cur) {
			changed = true
		}
		prev = cur
		if i == readRetries {
			var le *LoadError
			if changed && errors.As(err, &le) {
				le.temporary = true
			}
			return nil, nil, err
		}
		time.Sleep(readRetryDelay)
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
