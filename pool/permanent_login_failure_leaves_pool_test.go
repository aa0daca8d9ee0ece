package pool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A member whose login failed for good leaves the pool with one warning;
// the request it failed is served by another member; once every member has
// left, the caller gets ErrUnavailable, not temporary. A temporary failure, or one of a
// caller that gave up, keeps the member.
func TestPermanentLoginFailureLeavesThePool(t *testing.T) {
	c := newClock()
	var logs syncBuffer
	dead := fmt.Errorf("transport: credential unavailable: %w",
		&credentials.RefreshError{Permanent: true, Reason: credentials.ReasonRefreshTokenReused})
	flaky := &credentials.RefreshError{Status: 503}
	var mu sync.Mutex
	aErr := error(flaky)
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		return nil, aErr
	}}
	b := &stub{name: "b"}
	p, err := pool.NewWithClock(pool.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, c.Now,
		pool.Member{Name: "a", Transport: a}, pool.Member{Name: "b", Transport: b})
	if err != nil {
		t.Fatal(err)
	}
	// Temporary: the caller sees it, a stays.
	var sawFlaky bool
	for range 4 {
		if _, err := get(t, p, context.Background()); errors.Is(err, flaky) {
			sawFlaky = true
		}
	}
	if !sawFlaky || p.Members()[0].Left {
		t.Fatalf("temporary failure: seen %v, members %+v", sawFlaky, p.Members())
	}
	// Permanent, but the caller had given up: a stays.
	mu.Lock()
	aErr = dead
	mu.Unlock()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 4 {
		get(t, p, canceled)
	}
	if p.Members()[0].Left {
		t.Fatal("a left the pool on a canceled request")
	}
	// Permanent: a leaves, its request is served by b.
	for range 10 {
		resp, err := get(t, p, context.Background())
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a request failed though b could serve it: %v", err)
		}
	}
	if st := p.Members(); !st[0].Left || st[1].Left {
		t.Fatalf("members %+v", st)
	}
	if n := strings.Count(logs.String(), "leaves the pool"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "member=a") {
		t.Errorf("warning: %s", logs.String())
	}
	calls := a.calls.Load()
	get(t, p, context.Background())
	if a.calls.Load() != calls {
		t.Error("a member that left got a request")
	}

	b.answer = func(*http.Request) (*http.Response, error) { return nil, dead }
	get(t, p, context.Background())
	if _, err := get(t, p, context.Background()); !errors.Is(err, pool.ErrUnavailable) || transport.IsTemporary(err) {
		t.Errorf("with no member left: %v (temporary %v), want a permanent ErrUnavailable", err, transport.IsTemporary(err))
	}
}

func TestNewRejectsBadMembers(t *testing.T) {
	s := &stub{}
	for name, ms := range map[string][]pool.Member{
		"none":      nil,
		"no name":   {{Transport: s}},
		"duplicate": {{Name: "x", Transport: s}, {Name: "x", Transport: s}},
		"no rt":     {{Name: "x"}},
	} {
		if _, err := pool.New(pool.Options{}, ms...); err == nil {
			t.Errorf("%s: New accepted", name)
		}
	}
	if _, err := pool.New(pool.Options{MaxThreads: -1}, pool.Member{Name: "x", Transport: s}); err == nil {
		t.Error("New accepted a negative MaxThreads")
	}
}
