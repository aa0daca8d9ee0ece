// Package processtask keeps the process task of each agent identity: the one
// task, registered lazily on first use and without external_task_ref, that
// signs every request that carries no thread key (background, control-plane
// and sessionless callers).
//
// The task is shared by every transport built on the same identity in this
// process, so N clients cost one registration. Callers never see the task id;
// the transport asks a [Handle] for it and signs with it.
package processtask

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"golang.org/x/sync/singleflight"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// Identity names an agent identity: the AuthAPI base that registers its
// tasks, its runtime id and a fingerprint of its public key. It contains
// nothing secret.
//
// The key is part of the name because a runtime id alone does not say
// which key signs for it: two records with the same runtime id and
// different keys (a stale copy, a record rewritten by another tool) must
// not share a handle, or the second transport would sign with a task
// registered under the first one's key and have every request refused.
type Identity struct {
	AuthAPIBase string
	RuntimeID   string
	// KeyFingerprint identifies the public key of the identity, for
	// example with [KeyFingerprint].
	KeyFingerprint string
}

// KeyFingerprint returns a fingerprint of a public key for
// [Identity.KeyFingerprint]: the hex SHA-256 of its bytes.
func KeyFingerprint(publicKey []byte) string {
	sum := sha256.Sum256(publicKey)
	return hex.EncodeToString(sum[:])
}

// RegisterFunc registers a process task (a task without external_task_ref)
// and returns its id. It runs on a context detached from callers and must
// honour that context.
type RegisterFunc func(ctx context.Context) (taskID string, err error)

// ErrOptionsMismatch is returned by [Shared] when the identity's process
// task is already shared under a different timeout or backoff.
var ErrOptionsMismatch = errors.New("processtask: the identity's process task is already shared with a different timeout or backoff")

// Handle holds one identity's process task: an atomic pointer read without a
// lock, one registration at a time (single flight, on a context detached
// from the callers and bounded by the policy's timeout), and the last
// failure cached with a jittered backoff so that an unavailable endpoint is
// not asked again on every request.
type Handle struct {
	register RegisterFunc
	policy   taskcache.Policy
	task     atomic.Pointer[taskcache.Task]
	flight   singleflight.Group
	persist  atomic.Pointer[Persistence]

	mu       sync.Mutex
	failures int                     // consecutive failed registrations
	backoff  *taskcache.BackoffError // the last failure while its backoff runs
	rejected string                  // the last task id the server refused

	registrations, failed, panics, rejections, invalidations atomic.Uint64
	reused, saveFailures                                     atomic.Uint64 // persisted tasks taken; failed saves
}

var (
	registryMu sync.Mutex
	registry   = map[Identity]weak.Pointer[Handle]{}
)

// Shared returns the process-task handle of id, creating it on first use
// with register and opts (only opts' timeout, backoff, clock and jitter
// source apply: there is one task and it never idles out). A later call for
// the same identity returns the same handle and does not use its register:
// the first transport built on an identity registers its process task, so
// register must not hold on to that transport. A later call whose timeout or
// backoff differs gets [ErrOptionsMismatch] instead of a handle that would
// silently behave otherwise; its clock and jitter source (Now, Rand) cannot
// be compared, and the first caller's are kept. The registry holds handles
// weakly, so an identity whose transports are all gone costs nothing.
func Shared(id Identity, register RegisterFunc, opts taskcache.CacheOptions) (*Handle, error) {
	if id.RuntimeID == "" {
		return nil, errors.New("processtask: identity has no runtime id")
	}
	policy, err := taskcache.NewPolicy(opts)
	if err != nil {
		return nil, err
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if h := registry[id].Value(); h != nil {
		if !h.policy.SameSchedule(policy) {
			return nil, fmt.Errorf("%w (runtime %q)", ErrOptionsMismatch, id.RuntimeID)
		}
		return h, nil
	}
	h, err := newHandle(register, policy)
	if err != nil {
		return nil, err
	}
	registry[id] = weak.Make(h)
	runtime.AddCleanup(h, forget, id)
	return h, nil
}

// forget drops the registry entry of a collected handle.
func forget(id Identity) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if registry[id].Value() == nil {
		delete(registry, id)
	}
}

// New returns a handle that is not shared with other transports.
func New(register RegisterFunc, opts taskcache.CacheOptions) (*Handle, error) {
	policy, err := taskcache.NewPolicy(opts)
	if err != nil {
		return nil, err
	}
	return newHandle(register, policy)
}

func newHandle(register RegisterFunc, policy taskcache.Policy) (*Handle, error) {
	if register == nil {
		return nil, errors.New("processtask: nil RegisterFunc")
	}
	return &Handle{register: register, policy: policy}, nil
}

// Get returns the process task, registering it if needed. Concurrent first
// callers share one registration; if ctx ends first, Get returns an error
// wrapping ctx.Err() and the registration carries on for the others. A
// failed registration returns a [*taskcache.AttemptError] to everyone
// who waited for it, and later calls get a [*taskcache.BackoffError] without
// a registration until the backoff has passed.
func (h *Handle) Get(ctx context.Context) (*taskcache.Task, error) {
	if t := h.task.Load(); t != nil {
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, waitError(err)
	}
	if err := h.backingOff(); err != nil {
		return nil, err
	}
	ch := h.flight.DoChan("", func() (any, error) { return h.fly(ctx) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*taskcache.Task), nil
	case <-ctx.Done():
		return nil, waitError(ctx.Err())
	}
}

func waitError(err error) error {
	return fmt.Errorf("processtask: stopped waiting for the process task's registration: %w", err)
}

// backingOff returns the cached failure while its backoff runs.
func (h *Handle) backingOff() error {
	h.mu.Lock()
	b := h.backoff
	h.mu.Unlock()
	if b != nil && h.policy.Now().Before(b.Until) {
		h.rejections.Add(1)
		return b
	}
	return nil
}

// fly is one registration, run by singleflight on its own goroutine. It
// never panics (Policy.Register recovers) and publishes its outcome before
// returning, so a caller that missed just before it ended finds the result.
func (h *Handle) fly(ctx context.Context) (any, error) {
	if t := h.task.Load(); t != nil {
		return t, nil
	}
	if err := h.backingOff(); err != nil {
		return nil, err
	}
	p, id, rejected := h.stored(ctx)
	if lk, ok := p.(Locker); ok && id == "" {
		// Another process may be registering the task: wait for it, then
		// look again.
		if release, err := lk.Lock(ctx); err == nil {
			defer release()
			_, id, rejected = h.stored(ctx)
		}
	}
	if id != "" {
		t := taskcache.NewTask("", id)
		h.mu.Lock()
		h.failures, h.backoff = 0, nil
		h.mu.Unlock()
		h.reused.Add(1)
		h.task.Store(t)
		return t, nil
	}
	h.mu.Lock()
	n := h.failures + 1
	h.mu.Unlock()
	id, err, panicked := h.policy.Register(taskcache.WithAttempt(ctx, n), h.register)
	if panicked {
		h.panics.Add(1)
	}
	if err != nil {
		h.failed.Add(1)
		rerr := &taskcache.AttemptError{Key: "", Err: err}
		until := h.policy.Now().Add(h.policy.Wait(n, err))
		h.mu.Lock()
		h.failures = n
		h.backoff = &taskcache.BackoffError{Key: "", Until: until, Failures: n, Err: rerr}
		h.mu.Unlock()
		return nil, rerr
	}
	t := taskcache.NewTask("", id)
	h.mu.Lock()
	h.failures, h.backoff = 0, nil
	h.mu.Unlock()
	h.registrations.Add(1)
	h.task.Store(t)
	if p != nil {
		// Best effort: the task serves this process whether or not it can
		// be kept for the next one.
		if p.Save(ctx, id, rejected) != nil {
			h.saveFailures.Add(1)
		}
	}
	return t, nil
}

// Invalidate drops task if it is still the current process task (after the
// server rejected it), so the next Get registers a new one (a persisted
// task equal to the rejected one is not reused). A
// stale call (the task was already replaced) changes nothing.
func (h *Handle) Invalidate(task *taskcache.Task) bool {
	if task == nil || !h.task.CompareAndSwap(task, nil) {
		return false
	}
	h.mu.Lock()
	h.rejected = task.ID()
	h.mu.Unlock()
	h.invalidations.Add(1)
	return true
}

// Stats returns the registration counters of the process task (the
// eviction and expiry counters stay zero: the task is never evicted).
func (h *Handle) Stats() taskcache.CacheStats {
	return taskcache.CacheStats{
		Registrations:     h.registrations.Load(),
		Failures:          h.failed.Load(),
		Panics:            h.panics.Load(),
		BackoffRejections: h.rejections.Load(),
		Invalidations:     h.invalidations.Load(),
	}
}
