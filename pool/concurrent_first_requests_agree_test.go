package pool_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/transport"
)

// threadStub records which threads it served.
type threadStub struct {
	stub
	mu   sync.Mutex
	seen map[string]int
}

func newThreadStub(name string) *threadStub {
	s := &threadStub{seen: map[string]int{}}
	s.name = name
	s.answer = func(req *http.Request) (*http.Response, error) {
		th, _ := transport.ThreadFrom(req.Context())
		s.mu.Lock()
		s.seen[th]++
		s.mu.Unlock()
		return ok(nil), nil
	}
	return s
}

// Concurrent first requests of one thread all go to one member: the
// assignment is made once per thread.
func TestConcurrentFirstRequestsOfAThreadAgree(t *testing.T) {
	c := newClock()
	a, b, d := newThreadStub("a"), newThreadStub("b"), newThreadStub("c")
	p := newPool(t, c, &a.stub, &b.stub, &d.stub)
	var wg sync.WaitGroup
	for th := range 20 {
		ctx := transport.WithThread(context.Background(), "thread-"+string(rune('a'+th)))
		for range 10 {
			wg.Go(func() {
				if _, err := get(t, p, ctx); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	for th := range 20 {
		key := "thread-" + string(rune('a'+th))
		members := 0
		for _, s := range []*threadStub{a, b, d} {
			s.mu.Lock()
			if s.seen[key] > 0 {
				members++
			}
			s.mu.Unlock()
		}
		if members != 1 {
			t.Errorf("%s was served by %d members", key, members)
		}
	}
}

// usage_not_included moves work off the member too, like a limit reached.
func TestUsageNotIncludedMovesWork(t *testing.T) {
	c := newClock()
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) {
		r := limitReached(c.Now())
		r.Body = nopBody(`{"error":{"type":"usage_not_included"}}`)
		return r, nil
	}}
	b := &stub{name: "b"}
	p := newPool(t, c, a, b)
	for range 6 {
		resp, err := get(t, p, context.Background())
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v, %v", resp, err)
		}
	}
	if a.calls.Load() != 1 {
		t.Errorf("a was called %d times after usage_not_included", a.calls.Load())
	}
	st := p.Members()[0]
	if want := c.Now().Add(5 * time.Minute); !st.LimitedUntil.Equal(want) {
		t.Errorf("a limited until %v, want the default cooldown (%v)", st.LimitedUntil, want)
	}
}
