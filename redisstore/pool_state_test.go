package redisstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

var _ pool.Shared = (*PoolState)(nil)

func newPoolState(t *testing.T) (*PoolState, *redis.Client) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	s, err := NewPoolState(c, fmt.Sprintf("agentauth:test:%d:%s:", time.Now().UnixNano(), t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// Assign keeps the first member stored for a thread, replaces it only when
// the caller must avoid it, and never stores the thread key itself; Limit
// keeps the later limit and Limits leaves out passed ones.
func TestPoolStateContract(t *testing.T) {
	s, c := newPoolState(t)
	ctx := context.Background()
	thread := "conversation-secret-7f3a"
	for i, tc := range []struct {
		proposed string
		avoid    []string
		want     string
	}{
		{"a", nil, "a"},
		{"b", nil, "a"},
		{"b", []string{"c"}, "a"},
		{"b", []string{"a"}, "b"},
		{"c", nil, "b"},
	} {
		got, err := s.Assign(ctx, thread, tc.proposed, tc.avoid, time.Hour)
		if err != nil || got != tc.want {
			t.Fatalf("step %d: Assign(%s, avoid %v) = %q, %v; want %q", i, tc.proposed, tc.avoid, got, err, tc.want)
		}
	}
	keys, err := c.Keys(ctx, s.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, thread) {
			t.Errorf("key %q holds the thread key", k)
		}
	}
	if ttl := c.PTTL(ctx, s.threadKey(thread)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("thread entry TTL %v", ttl)
	}

	now := time.Now()
	s.now = func() time.Time { return now }
	if err := s.Limit(ctx, "a", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Limit(ctx, "a", now.Add(time.Minute)) // earlier: ignored
	s.Limit(ctx, "b", now.Add(-time.Minute))
	s.Limit(ctx, "c", now.Add(365*24*time.Hour))
	got, err := s.Limits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"].UnixMilli() != now.Add(time.Hour).UnixMilli() || got["c"].UnixMilli() != now.Add(8*24*time.Hour).UnixMilli() {
		t.Errorf("Limits = %v", got)
	}
	if _, err := NewPoolState(c, "bad{prefix"); err == nil {
		t.Error("a prefix with a brace was accepted")
	}
}

type limitStub struct {
	limited *atomic.Bool
	calls   atomic.Int64
	name    string
	mu      *sync.Mutex
	last    *string
}

func (s *limitStub) RoundTrip(req *http.Request) (*http.Response, error) {
	s.calls.Add(1)
	if s.limited.Load() {
		body := `{"error":{"type":"usage_limit_reached","resets_at":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}}`
		return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}, nil
	}
	s.mu.Lock()
	*s.last = s.name
	s.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
}

// Two replicas' pools on one PoolState agree which login serves each
// thread, and a login one replica found limited gets nothing from the
// other after its next read of the limits (at most a second later).
func TestPoolStateReplicasAgree(t *testing.T) {
	s, _ := newPoolState(t)
	limited := map[string]*atomic.Bool{"a": {}, "b": {}, "c": {}}
	type replica struct {
		p     *pool.Pool
		stubs map[string]*limitStub
		mu    sync.Mutex
		last  string
	}
	newReplica := func() *replica {
		r := &replica{stubs: map[string]*limitStub{}}
		var ms []pool.Member
		for _, n := range []string{"a", "b", "c"} {
			st := &limitStub{limited: limited[n], name: n, mu: &r.mu, last: &r.last}
			r.stubs[n] = st
			ms = append(ms, pool.Member{Name: n, Transport: st})
		}
		p, err := pool.New(pool.Options{Shared: s, Logger: slog.New(slog.DiscardHandler)}, ms...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		r.p = p
		return r
	}
	served := func(r *replica, thread string) string {
		req, _ := http.NewRequestWithContext(transport.WithThread(context.Background(), thread), http.MethodGet, "https://chatgpt.com/backend-api/codex/responses", nil)
		resp, err := r.p.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("thread %s: %v, %v", thread, resp, err)
		}
		resp.Body.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.last
	}
	r1, r2 := newReplica(), newReplica()
	served(r2, "offset") // replica 2's turns are one ahead
	home := map[string]string{}
	for i := range 6 {
		th := fmt.Sprintf("thread-%d", i)
		home[th] = served(r1, th)
	}
	for th, want := range home {
		if got := served(r2, th); got != want {
			t.Errorf("%s: replica 1 on %s, replica 2 on %s", th, want, got)
		}
	}
	limited["a"].Store(true)
	for th, m := range home {
		if m == "a" {
			served(r1, th) // replica 1 meets the limit and moves the thread
		}
	}
	// Replica 2 reads the limits at most once a second: wait for a read
	// after replica 1 shared the limit, bounded.
	before := r2.stubs["a"].calls.Load()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := r2.p.Members(); !st[0].LimitedUntil.IsZero() {
			break
		}
		served(r2, "probe-"+strconv.FormatInt(time.Now().UnixNano(), 10))
		time.Sleep(100 * time.Millisecond)
	}
	if r2.p.Members()[0].LimitedUntil.IsZero() {
		t.Fatal("replica 2 never learnt the limit")
	}
	probes := r2.stubs["a"].calls.Load() - before
	before = r2.stubs["a"].calls.Load()
	for th, m := range home {
		got := served(r2, th)
		if m == "a" && got == "a" {
			t.Errorf("%s stayed on the limited login", th)
		}
	}
	if n := r2.stubs["a"].calls.Load() - before; n != 0 {
		t.Errorf("replica 2 sent %d requests to the limited login after learning the limit (%d while learning)", n, probes)
	}
}
