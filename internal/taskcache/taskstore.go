package taskcache

import "context"

// StoreKey names a thread task across processes: the agent runtime it
// belongs to and the thread key sent as external_task_ref. Neither is a
// secret, so a shared store never holds credentials.
type StoreKey struct {
	RuntimeID   string
	ExternalRef string
}

// TaskStore lets several processes (replicas of one service) share thread
// tasks, so a thread served by N replicas costs one registration instead
// of N. The in-process task cache stays in front of it: a store is asked
// only on a local miss, inside the cache's single flight.
//
// Implementations decide how to de-duplicate across processes and must
// prefer availability: when the shared store is unreachable, Resolve
// registers locally (calling register) rather than fail the request.
type TaskStore interface {
	// Resolve returns the task id the fleet uses for key. When the fleet
	// has none, it registers one with register (at most once across the
	// fleet while the store is healthy) and publishes it.
	Resolve(ctx context.Context, key StoreKey, register func(context.Context) (taskID string, err error)) (string, error)

	// Forget removes the fleet's mapping for key only if it still names
	// taskID, after the server rejected that task with 401.
	Forget(ctx context.Context, key StoreKey, taskID string) error
}
