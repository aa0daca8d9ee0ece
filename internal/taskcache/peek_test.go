package taskcache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Peek is the hit half of Get: nil (and no registration, no backoff
// rejection counted) for a key without a task, the cached task once Get has
// registered it, a touch that keeps it from idling out at the time given,
// and nil once it has been idle longer than the TTL at that time.
func TestPeekIsTheHitPathOnly(t *testing.T) {
	clk := newClock()
	var calls atomic.Int32
	opts := testOptions(clk)
	opts.IdleTTL = time.Minute
	c := mustCache(t, func(_ context.Context, key string) (string, error) {
		calls.Add(1)
		return key + "#1", nil
	}, opts)

	if tk := c.Peek("k", clk.Now()); tk != nil {
		t.Fatalf("Peek of an unknown key = %v, want nil", tk)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("Peek registered %d times, want 0", n)
	}
	tk, err := c.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Peek("k", clk.Now()); got != tk {
		t.Fatalf("Peek after Get = %v, want the cached task %v", got, tk)
	}

	// A Peek 50 s on counts as a use: 50 s after it the task is still live
	// although 100 s have passed since its registration.
	clk.Advance(50 * time.Second)
	if got := c.Peek("k", clk.Now()); got != tk {
		t.Fatalf("Peek at +50s = %v, want %v", got, tk)
	}
	clk.Advance(50 * time.Second)
	if got := c.Peek("k", clk.Now()); got != tk {
		t.Fatalf("Peek at +100s (50s after the last use) = %v, want %v", got, tk)
	}
	// The time passed is what counts, not the cache's own clock: idle for
	// longer than the TTL at the given time is a miss.
	if got := c.Peek("k", clk.Now().Add(2*time.Minute)); got != nil {
		t.Fatalf("Peek two minutes after the last use = %v, want nil", got)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("RegisterFunc calls = %d, want 1", n)
	}

	// A key in backoff has no task: Peek says nil without counting a
	// rejection (only Get rejects).
	fail := mustCache(t, func(context.Context, string) (string, error) { return "", errors.New("down") }, testOptions(clk))
	if _, err := fail.Get(context.Background(), "f"); err == nil {
		t.Fatal("failing registration returned no error")
	}
	if got := fail.Peek("f", clk.Now()); got != nil {
		t.Fatalf("Peek of a key in backoff = %v, want nil", got)
	}
	if s := fail.Stats(); s.BackoffRejections != 0 {
		t.Fatalf("BackoffRejections = %d after Peek, want 0", s.BackoffRejections)
	}
}
