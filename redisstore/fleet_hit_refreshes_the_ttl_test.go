package redisstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// A fleet hit extends the mapping's life (sliding TTL).
func TestHitRefreshesTTL(t *testing.T) {
	addr := redisAddr(t)
	s := newStore(t, addr, Options{TTL: time.Hour})
	key := taskcache.StoreKey{RuntimeID: "rt-1", ExternalRef: "thread-ttl"}
	ctx := context.Background()
	var calls atomic.Int32
	if _, err := s.Resolve(ctx, key, fixedID("task-1", &calls)); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, addr)
	m := s.keysFor(key).mapping
	if err := c.PExpire(ctx, m, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, key, fixedID("task-x", &calls)); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := c.PTTL(ctx, m).Result(); ttl < 59*time.Minute {
		t.Fatalf("TTL after a hit = %v, want about 1h", ttl)
	}
}
