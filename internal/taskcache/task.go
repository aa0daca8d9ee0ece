package taskcache

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a registered Agent Identity task for one key (a thread key, or the
// process task's key). A Task is immutable once returned: its key and id never
// change, so a *Task can be shared by any number of goroutines and compared by
// pointer to tell one registration from the next (see [Cache.Invalidate]).
//
// A Task stays usable after the cache has evicted or invalidated it; the next
// [Cache.Get] for its key simply registers a new one.
//
// Task formats itself (every fmt verb, slog) as its key and id only; the
// signed assertion the transport caches on it never appears.
type Task struct {
	node
	id string

	// assertion is the task's last signed AgentAssertion header, kept on
	// the task so that the read path is one atomic load and an evicted task
	// takes its signature with it. The [Signer] sets it, and clears it once
	// it can no longer be sent, so an idle task holds no header. signMu
	// makes one caller at a time sign the task. Used only by signer.go.
	assertion atomic.Pointer[signedAssertion]
	signMu    sync.Mutex
}

// signedAssertion is an AgentAssertion header minted for a task at one
// whole Unix second. at is the clock reading it was signed for, kept for
// its monotonic part (see [Signer]). header is a secret.
type signedAssertion struct {
	second int64
	header string
	at     time.Time
}

// ID returns the task id the registration endpoint assigned.
func (t *Task) ID() string { return t.id }

// Key returns the key the task was registered for (for a thread task, the
// thread key sent as external_task_ref).
func (t *Task) Key() string { return t.key }

// String describes the task by key and id.
func (t *Task) String() string {
	if t == nil {
		return "taskcache.Task(nil)"
	}
	return "taskcache.Task{Key:" + strconv.Quote(t.key) + " ID:" + strconv.Quote(t.id) + "}"
}

// GoString is [Task.String].
func (t *Task) GoString() string { return t.String() }

// Format makes every fmt verb, including %#v and %+v, print [Task.String],
// so a cached assertion can never reach formatted output.
func (t *Task) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue logs the task's key and id only.
func (t *Task) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("key", t.key), slog.String("task_id", t.id))
}

// NewTask returns the task registered for key with id, for holders of a
// single task outside a [Cache] (the process task).
func NewTask(key, id string) *Task { return &Task{node: node{key: key}, id: id} }
