// Package provisionlock serialises agent provisioning for one auth.json
// across the processes of a machine: the process that holds the lock
// registers the login's agent and stores it, and the others, once they get
// the lock, find it stored and register nothing. It is a lock file of its
// own beside auth.json, so holding it during a registration never delays
// a token refresh or a Codex CLI (which takes no lock at all).
package provisionlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// FileName is the lock file, in the directory of auth.json.
const FileName = ".agentauth-provision.lock"

// retryDelay is how often a waiting provisioning retries the lock; a
// registration takes at least a round trip, so polling faster buys nothing.
const retryDelay = 10 * time.Millisecond

// Acquire takes the provisioning lock of the auth.json at authPath, waiting
// until ctx ends. The returned release must be called exactly once.
func Acquire(ctx context.Context, authPath string) (release func(), err error) {
	dir := filepath.Dir(authPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agentauth: provisioning lock: %w", err)
	}
	lock := flock.New(filepath.Join(dir, FileName), flock.SetPermissions(0o600))
	ok, err := lock.TryLockContext(ctx, retryDelay)
	if err == nil && !ok {
		err = errors.New("lock not acquired")
	}
	if err != nil {
		return nil, fmt.Errorf("agentauth: waiting for the provisioning lock %s: %w", lock.Path(), err)
	}
	return func() { _ = lock.Unlock() }, nil
}
