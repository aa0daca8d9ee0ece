package processtask

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentauth/agentauth/internal/taskcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSharedOnePerIdentity(t *testing.T) {
	var calls atomic.Int32
	register := func(ctx context.Context) (string, error) {
		n := calls.Add(1)
		return "task-" + string(rune('0'+n)), nil
	}
	id := Identity{AuthAPIBase: "http://127.0.0.1:1", RuntimeID: t.Name()}
	h1, err := Shared(id, register, taskcache.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := Shared(id, func(context.Context) (string, error) {
		t.Error("the second transport's RegisterFunc was used")
		return "", errors.New("unused")
	}, taskcache.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Fatal("two transports on one identity got different handles")
	}
	if calls.Load() != 0 {
		t.Fatal("process task registered before first use")
	}

	var wg sync.WaitGroup
	tasks := make([]*taskcache.Task, 100)
	for i := range tasks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := h1
			if i%2 == 1 {
				h = h2
			}
			task, err := h.Get(context.Background())
			if err != nil {
				t.Error(err)
			}
			tasks[i] = task
		}(i)
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("registrations = %d, want 1", calls.Load())
	}
	for _, task := range tasks {
		if task != tasks[0] || task.ID() != "task-1" || task.Key() != "" {
			t.Fatalf("task = %v", task)
		}
	}

	other, _ := Shared(Identity{AuthAPIBase: id.AuthAPIBase, RuntimeID: t.Name() + "-other"}, register, taskcache.CacheOptions{})
	if other == h1 {
		t.Fatal("a different runtime shares the handle")
	}
	if _, err := Shared(Identity{}, register, taskcache.CacheOptions{}); err == nil {
		t.Fatal("an identity without a runtime id was accepted")
	}
}

func TestInvalidateReRegistersOnce(t *testing.T) {
	var calls atomic.Int32
	h, err := New(func(context.Context) (string, error) {
		calls.Add(1)
		return "task", nil
	}, taskcache.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := h.Get(context.Background())
	if !h.Invalidate(first) {
		t.Fatal("Invalidate of the current task returned false")
	}
	second, _ := h.Get(context.Background())
	if second == first || calls.Load() != 2 {
		t.Fatalf("after invalidate: same=%v calls=%d", second == first, calls.Load())
	}
	if h.Invalidate(first) {
		t.Fatal("a stale invalidation removed the new task")
	}
	if got, _ := h.Get(context.Background()); got != second || calls.Load() != 2 {
		t.Fatal("stale invalidation caused a registration")
	}
	if _, err := New(nil, taskcache.CacheOptions{}); err == nil {
		t.Fatal("nil RegisterFunc accepted")
	}
}

func TestFailureIsRetriedAfterBackoff(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	fail := true
	var calls atomic.Int32
	h, _ := New(func(context.Context) (string, error) {
		calls.Add(1)
		if fail {
			return "", errors.New("503")
		}
		return "task", nil
	}, taskcache.CacheOptions{Now: clock, BackoffInitial: time.Second, BackoffJitter: -1})
	if _, err := h.Get(context.Background()); err == nil {
		t.Fatal("failure not reported")
	}
	fail = false
	var be *taskcache.BackoffError
	if _, err := h.Get(context.Background()); !errors.As(err, &be) || calls.Load() != 1 {
		t.Fatalf("inside backoff: %v, calls %d", err, calls.Load())
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if task, err := h.Get(context.Background()); err != nil || task.ID() != "task" || calls.Load() != 2 {
		t.Fatalf("after backoff: %v %v calls %d", task, err, calls.Load())
	}
	if h.Stats().Failures != 1 || h.Stats().Registrations != 1 {
		t.Fatalf("stats %+v", h.Stats())
	}
}

// The registry holds handles weakly: once no transport holds an identity's
// handle, the entry goes away instead of keeping it (and whatever its
// RegisterFunc captured) alive for the life of the process.
func TestRegistryDropsUnusedHandles(t *testing.T) {
	id := Identity{AuthAPIBase: "http://127.0.0.1:1", RuntimeID: t.Name()}
	func() {
		h, err := Shared(id, func(context.Context) (string, error) { return "t", nil }, taskcache.CacheOptions{})
		if err != nil || h == nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		registryMu.Lock()
		_, present := registry[id]
		registryMu.Unlock()
		if !present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("registry still holds the identity after its handle became unreachable")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
