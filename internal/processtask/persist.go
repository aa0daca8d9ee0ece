package processtask

import "context"

// Persistence keeps an identity's process task beyond this process: the
// Codex CLI keeps its run task in the auth.json agent_identity record
// (task_id) and reuses it for sessionless requests, and so do later
// processes of agentauth.
type Persistence interface {
	// Load returns the stored task id of the identity, "" when none.
	Load(ctx context.Context) (taskID string, err error)
	// Save stores taskID as the identity's task. replaces is the stored
	// task the server refused ("" when there was none); a store keeps a
	// task another process stored meanwhile instead of overwriting it.
	Save(ctx context.Context, taskID, replaces string) error
}

// Locker is implemented by a Persistence shared between processes: Lock
// takes a lock that every process holds from reading the stored task to
// storing the one it registers, so that processes starting together
// register one task between them. release must be called exactly once.
type Locker interface {
	Lock(ctx context.Context) (release func(), err error)
}

// SetPersistence makes h reuse the task p holds before registering one,
// and store each task it registers. The first persistence set on a handle
// stays (the handle is shared by every transport of the identity); it
// reports whether p was taken.
func (h *Handle) SetPersistence(p Persistence) bool {
	if p == nil {
		return false
	}
	return h.persist.CompareAndSwap(nil, &p)
}

// stored returns the persisted task when there is one the server has not
// refused in this process.
func (h *Handle) stored(ctx context.Context) (p Persistence, taskID, rejected string) {
	pp := h.persist.Load()
	if pp == nil {
		return nil, "", ""
	}
	h.mu.Lock()
	rejected = h.rejected
	h.mu.Unlock()
	id, err := (*pp).Load(ctx)
	if err != nil || id == rejected {
		return *pp, "", rejected
	}
	return *pp, id, rejected
}

// Reused reports how many times h took a persisted task instead of
// registering one.
func (h *Handle) Reused() uint64 { return h.reused.Load() }
