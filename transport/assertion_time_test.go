package transport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

type atRoundTripper func(*http.Request) (*http.Response, error)

func (f atRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type atClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *atClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *atClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// A thread's first request is signed with the time its task registration
// ended, not the time the request arrived: the hit path reads the clock
// once for the cache and the signer, and a miss must read it again after
// a registration that took seconds, or the assertion would be dated by
// the registration's start. A later request in the same second reuses the
// assertion (one signature).
func TestFirstAssertionDatedAfterRegistration(t *testing.T) {
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-assertion-time", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-at"}
	start := time.Date(2026, 4, 23, 10, 0, 0, 0, time.UTC)
	clk := &atClock{t: start}
	const registration = 5 * time.Second
	reg := &http.Client{Transport: atRoundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		clk.Advance(registration) // the registration takes five seconds
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"task_id":"task-at"}`)), Request: r}, nil
	})}
	var mu sync.Mutex
	var sent []string
	base := atRoundTripper(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Authorization"))
		mu.Unlock()
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	cfg := config{
		Credentials:        &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec},
		RegistrationClient: reg,
	}
	cfg.hooks.Now = clk.Now
	rt, err := newTransport(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		req, err := http.NewRequestWithContext(WithThread(context.Background(), "thread-at"), http.MethodPost, "https://chatgpt.com/backend-api/codex/responses", http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(sent) != 2 {
		t.Fatalf("%d requests reached the base, want 2", len(sent))
	}
	a, err := identity.ParseAssertion(sent[0])
	if err != nil {
		t.Fatalf("ParseAssertion: %v", err)
	}
	ts, err := time.Parse(time.RFC3339, a.Timestamp)
	if err != nil {
		t.Fatalf("timestamp %q: %v", a.Timestamp, err)
	}
	if want := start.Add(registration); !ts.Equal(want) {
		t.Fatalf("first assertion dated %v, want %v (the end of its registration, not its start %v)", ts, want, start)
	}
	if sent[1] != sent[0] {
		t.Errorf("second request in the same second sent another assertion")
	}
	if s := rt.Stats(); s.Signatures != 1 || s.ThreadRegistrations != 1 {
		t.Errorf("signatures %d, thread registrations %d; want 1 and 1", s.Signatures, s.ThreadRegistrations)
	}
}
