package processtask

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// A later transport on the same identity cannot silently get a process task
// that times out or backs off differently from what it asked for: Shared
// rejects the mismatch and still hands out the handle to a matching caller.
func TestSharedRejectsADifferentSchedule(t *testing.T) {
	id := Identity{AuthAPIBase: "http://127.0.0.1:1", RuntimeID: t.Name()}
	register := func(context.Context) (string, error) { return "task", nil }
	first, err := Shared(id, register, taskcache.CacheOptions{Timeout: 5 * time.Second, BackoffInitial: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]taskcache.CacheOptions{
		"timeout":         {Timeout: 6 * time.Second, BackoffInitial: time.Second},
		"backoff initial": {Timeout: 5 * time.Second, BackoffInitial: 2 * time.Second},
		"backoff max":     {Timeout: 5 * time.Second, BackoffInitial: time.Second, BackoffMax: 2 * time.Minute},
		"jitter":          {Timeout: 5 * time.Second, BackoffInitial: time.Second, BackoffJitter: -1},
	} {
		if h, err := Shared(id, register, opts); !errors.Is(err, ErrOptionsMismatch) || h != nil {
			t.Errorf("%s differs: Shared = %v, %v; want ErrOptionsMismatch", name, h, err)
		}
	}
	// Defaults are compared after they apply, and fields the process task
	// does not use (capacity, idle TTL) do not count.
	same := taskcache.CacheOptions{Timeout: 5 * time.Second, BackoffInitial: time.Second,
		BackoffMax: taskcache.DefaultBackoffMax, Capacity: 7, IdleTTL: time.Minute}
	if h, err := Shared(id, register, same); err != nil || h != first {
		t.Fatalf("matching options: Shared = %v, %v; want the first handle", h, err)
	}
	if _, err := Shared(id, register, taskcache.CacheOptions{Timeout: -1}); err == nil || errors.Is(err, ErrOptionsMismatch) {
		t.Fatalf("invalid options: %v, want a validation error", err)
	}
}

// The clock cannot be compared, so the first caller's is kept: a later
// caller's clock never decides the shared handle's backoff deadlines.
func TestSharedKeepsTheFirstClock(t *testing.T) {
	id := Identity{AuthAPIBase: "http://127.0.0.1:1", RuntimeID: t.Name()}
	start := time.Unix(1_800_000_000, 0)
	first := func() time.Time { return start }
	later := func() time.Time { return start.Add(time.Hour) }
	register := func(context.Context) (string, error) { return "", errors.New("503") }
	opts := taskcache.CacheOptions{Now: first, BackoffInitial: time.Second, BackoffJitter: -1}
	h, err := Shared(id, register, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = later
	h2, err := Shared(id, register, opts)
	if err != nil || h2 != h {
		t.Fatalf("same schedule, other clock: %v, %v; want the first handle", h2, err)
	}
	if _, err := h2.Get(context.Background()); err == nil {
		t.Fatal("failure not reported")
	}
	var be *taskcache.BackoffError
	if _, err := h2.Get(context.Background()); !errors.As(err, &be) || !be.Until.Equal(start.Add(time.Second)) {
		t.Fatalf("backoff %v: want a deadline on the first caller's clock (%v)", err, start.Add(time.Second))
	}
}

// A caller whose context ends stops waiting; the registration it started
// carries on and its task is cached for the next caller.
func TestCanceledWaiterLeavesTheRegistrationRunning(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	h, err := New(func(ctx context.Context) (string, error) {
		close(started)
		select {
		case <-release:
			return "task", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}, taskcache.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := h.Get(ctx); errc <- err }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v, want context.Canceled", err)
	}
	close(release)
	// This Get joins the running flight or finds its task: either way, no
	// second registration.
	if task, err := h.Get(context.Background()); err != nil || task.ID() != "task" || h.Stats().Registrations != 1 {
		t.Fatalf("after the detached registration: %v %v %+v", task, err, h.Stats())
	}
}
