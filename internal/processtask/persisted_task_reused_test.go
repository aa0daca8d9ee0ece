package processtask

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/internal/taskcache"
)

type memPersistence struct {
	mu       sync.Mutex
	task     string
	replaced []string
}

func (m *memPersistence) Load(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.task, nil
}

func (m *memPersistence) Save(_ context.Context, id, replaces string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.task, m.replaced = id, append(m.replaced, replaces)
	return nil
}

// A persisted task is taken without a registration; once the server
// refuses it, a new one is registered and stored in its place.
func TestPersistedTaskReusedThenReplaced(t *testing.T) {
	var calls atomic.Int32
	h, err := New(func(context.Context) (string, error) {
		calls.Add(1)
		return "registered", nil
	}, taskcache.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &memPersistence{task: "stored"}
	if !h.SetPersistence(p) || h.SetPersistence(&memPersistence{}) {
		t.Fatal("the first persistence must be taken, and only it")
	}
	first, err := h.Get(context.Background())
	if err != nil || first.ID() != "stored" || calls.Load() != 0 || h.Reused() != 1 {
		t.Fatalf("first Get = %v, %v; %d registrations", first, err, calls.Load())
	}
	h.Invalidate(first)
	second, err := h.Get(context.Background())
	if err != nil || second.ID() != "registered" || calls.Load() != 1 {
		t.Fatalf("after the refusal: %v, %v; %d registrations", second, err, calls.Load())
	}
	if p.task != "registered" || len(p.replaced) != 1 || p.replaced[0] != "stored" {
		t.Fatalf("persisted %q replacing %v", p.task, p.replaced)
	}
}
