package redisstore

import (
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/redis/go-redis/v9"
)

func TestKeysAreHashedAndUnambiguous(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	s, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := s.keysFor(taskcache.StoreKey{RuntimeID: "rt-a", ExternalRef: "bc"})
	b := s.keysFor(taskcache.StoreKey{RuntimeID: "rt-ab", ExternalRef: "c"})
	if a.mapping == b.mapping {
		t.Fatal("different (runtime, thread) pairs share a key")
	}
	if !strings.HasPrefix(a.mapping, DefaultPrefix+"{") || !strings.HasSuffix(a.mapping, "}") || a.lock != a.mapping+":lock" {
		t.Fatalf("unexpected key layout %q / %q", a.mapping, a.lock)
	}
	odd := s.keysFor(taskcache.StoreKey{RuntimeID: "rt", ExternalRef: "thread {with} spaces\nand \u2028 more"})
	if strings.Contains(odd.mapping, "thread") || len(odd.mapping) != len(DefaultPrefix)+2+64 {
		t.Fatalf("thread key not hashed into a fixed-length key: %q", odd.mapping)
	}
}
