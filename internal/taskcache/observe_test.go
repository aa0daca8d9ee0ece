package taskcache

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

func TestOnRemoveReportsExpiryAndEviction(t *testing.T) {
	clk := newClock()
	var got []string
	opts := testOptions(clk)
	opts.Capacity, opts.IdleTTL = 2, time.Minute
	opts.OnRemove = func(key string, why RemovalReason) { got = append(got, key+":"+why.String()) }
	var reg registrar
	c := mustCache(t, reg.Register, opts)
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute) // a and b idle past the TTL
	if _, err := c.Get(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if len(got) != 2 || got[0] != "a:expired" || got[1] != "b:expired" {
		t.Fatalf("after expiry: %v", got)
	}
	got = nil
	if _, err := c.Get(ctx, "d"); err != nil { // c and d fill the cache
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "e"); err != nil { // full: one is evicted
		t.Fatal(err)
	}
	if len(got) != 1 || (got[0] != "c:evicted" && got[0] != "d:evicted") {
		t.Fatalf("after eviction: %v", got)
	}
	if s := c.Stats(); s.Evictions != 1 || s.Expirations != 2 {
		t.Errorf("stats %+v disagree with the reports", s)
	}
}

func TestAttemptCountsConsecutiveFailures(t *testing.T) {
	clk := newClock()
	var reg registrar
	c := mustCache(t, reg.Register, testOptions(clk))
	reg.fail.Store(true)
	ctx := context.Background()
	for range 2 {
		if _, err := c.Get(ctx, "k"); err == nil {
			t.Fatal("failing registration succeeded")
		}
		clk.Advance(time.Hour)
	}
	reg.fail.Store(false)
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if Attempt(ctx) != 0 {
		t.Error("Attempt of a context not from a cache is not 0")
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for i, want := range []int{1, 2, 3} {
		if got := Attempt(reg.ctxs[i]); got != want {
			t.Errorf("call %d: Attempt %d, want %d", i+1, got, want)
		}
	}
}

func TestSignerObserverSeesSignaturesNotReuses(t *testing.T) {
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key, "rt-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var signed []*Task
	s.SetObserver(func(task *Task) { signed = append(signed, task) })
	task := &Task{node: node{key: "thread"}, id: "task-1"}
	at := time.Unix(1_800_000_000, 0)
	for _, now := range []time.Time{at, at, at.Add(time.Second)} {
		if _, err := s.Assertion(task, now); err != nil {
			t.Fatal(err)
		}
	}
	if len(signed) != 2 || signed[0] != task {
		t.Fatalf("observer saw %d signatures, want 2 (one reuse)", len(signed))
	}
}
