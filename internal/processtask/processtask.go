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
	"errors"
	"runtime"
	"sync"
	"weak"

	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
)

// Identity names an agent identity: the AuthAPI base that registers its
// tasks and its runtime id. It contains nothing secret.
type Identity struct {
	AuthAPIBase string
	RuntimeID   string
}

// RegisterFunc registers a process task (a task without external_task_ref)
// and returns its id. It runs on a context detached from callers and must
// honour that context.
type RegisterFunc func(ctx context.Context) (taskID string, err error)

// processKey is the cache key of the process task. Thread keys are never
// empty, so it cannot collide with one.
const processKey = ""

// Handle gives access to one identity's process task.
type Handle struct {
	cache *taskcache.Cache
}

var (
	registryMu sync.Mutex
	registry   = map[Identity]weak.Pointer[Handle]{}
)

// Shared returns the process-task handle of id, creating it on first use
// with register and opts. Later calls for the same identity return the same
// handle and ignore their own register and opts: the first transport built
// on an identity decides how its process task is registered (its timeout,
// backoff and clock), so register must not hold on to that transport.
// Capacity and idle TTL are fixed: the task is kept while any transport
// holds the handle. The registry holds handles weakly, so an identity whose
// transports are all gone costs nothing.
func Shared(id Identity, register RegisterFunc, opts resolver.CacheOptions) (*Handle, error) {
	if id.RuntimeID == "" {
		return nil, errors.New("processtask: identity has no runtime id")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if h := registry[id].Value(); h != nil {
		return h, nil
	}
	h, err := New(register, opts)
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
func New(register RegisterFunc, opts resolver.CacheOptions) (*Handle, error) {
	if register == nil {
		return nil, errors.New("processtask: nil RegisterFunc")
	}
	opts.Capacity = 1
	opts.IdleTTL = -1
	cache, err := taskcache.New(func(ctx context.Context, _ string) (string, error) {
		return register(ctx)
	}, opts)
	if err != nil {
		return nil, err
	}
	return &Handle{cache: cache}, nil
}

// Get returns the process task, registering it if needed. Concurrent first
// callers share one registration; a failed one is retried by a later call
// after a jittered backoff.
func (h *Handle) Get(ctx context.Context) (*taskcache.Task, error) {
	return h.cache.Get(ctx, processKey)
}

// Invalidate drops task if it is still the current process task (after the
// server rejected it with 401), so the next Get registers a new one.
func (h *Handle) Invalidate(task *taskcache.Task) bool {
	return h.cache.Invalidate(task)
}

// Stats returns the registration counters of the process task.
func (h *Handle) Stats() taskcache.CacheStats { return h.cache.Stats() }
