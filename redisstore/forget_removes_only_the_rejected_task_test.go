package redisstore

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/internal/taskcache"
)

func TestForgetOnlyTheRejectedTask(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-401"}
	ctx := context.Background()
	var calls atomic.Int32
	if id, err := s.Resolve(ctx, key, fixedID("task-1", &calls)); err != nil || id != "task-1" {
		t.Fatalf("%q %v", id, err)
	}
	if err := s.Forget(ctx, key, "task-0"); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Resolve(ctx, key, fixedID("task-2", &calls)); id != "task-1" || calls.Load() != 1 {
		t.Fatalf("Forget of another task removed the mapping: got %q after %d registrations", id, calls.Load())
	}
	if err := s.Forget(ctx, key, "task-1"); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Resolve(ctx, key, fixedID("task-2", &calls)); id != "task-2" || calls.Load() != 2 {
		t.Fatalf("after Forget: %q after %d registrations", id, calls.Load())
	}
	if st := s.Stats(); st.Forgets != 1 || st.Hits != 1 || st.Registrations != 2 {
		t.Fatalf("stats %+v", st)
	}
}
