package redisstore

import (
	"context"
	"strconv"
	"testing"
)

// The cold-thread benchmarks measure the first request of a new thread
// through a transport against the loopback reference server: one task
// registration plus the request itself, with and without the Redis store
// (whose extra cost is the lookup-and-lock script before registering and
// the publish script after it). Their ratio is the row of the performance
// report: go test -run '^$' -bench ColdThread -benchtime 2000x.
func BenchmarkColdThreadInMemory(b *testing.B) { benchColdThread(b, false) }

// BenchmarkColdThreadRedis is BenchmarkColdThreadInMemory with the Redis
// store in front of registration.
func BenchmarkColdThreadRedis(b *testing.B) { benchColdThread(b, true) }

func benchColdThread(b *testing.B, withStore bool) {
	srv := newServer(b)
	rec := newIdentity(b, srv)
	var r *replica
	if withStore {
		r = newReplica(b, srv.URL(), rec, newStore(b, redisAddr(b), Options{}), nil)
	} else {
		r = newReplica(b, srv.URL(), rec, nil, nil)
	}
	ctx := context.Background()
	if _, err := r.do(ctx, srv.URL(), "warm-up"); err != nil { // connections and the process-wide state
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		if _, err := r.do(ctx, srv.URL(), "cold-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}
