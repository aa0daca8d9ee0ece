package transport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// A resource that answers 401 to every Bearer request (a path the login
// may not use, a proxy refusing the account header) must not make the
// transport rotate the login's single-use refresh token on every request.
// Before the fix recoverBearer asked the source twice per request and both
// asks became network refreshes: 5 requests cost 10 rotations. Now the
// second ask happens only after a store reload, and a token fresh from the
// endpoint that is refused at once is not refreshed again for a while: one
// rotation per token per hold window.

type alw401Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *alw401Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *alw401Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestBearerAlways401RotatesOncePerHoldWindow(t *testing.T) {
	clock := &alw401Clock{t: time.Now().Truncate(time.Second)}
	srv, err := identitytest.NewServer(identitytest.Options{Now: clock.Now, TokenLifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-alw401", UserID: "user-alw401"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, clock.Now()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hits := 0
	resource := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer resource.Close()

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
		Coordinator: credentials.NewAuthFileCoordinator(home),
		TokenURL:    srv.TokenURL(),
		HTTPClient:  &http.Client{Transport: base},
		Getenv:      func(string) string { return "" },
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.ChatGPT(src), defaultStore: true,
		chatGPTURL: resource.URL, options: func(o *transport.Options) { testhooks.Of(o).Now = clock.Now }}).rt
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func() {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, resource.URL+"/backend-api/x", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want the resource's 401", resp.StatusCode)
		}
	}

	const requests = 5
	for range requests {
		send()
	}
	if n := srv.Stats().TokenRefreshes; n != 1 {
		t.Fatalf("%d requests to a resource that refuses every token rotated the refresh token %d times, want 1", requests, n)
	}
	mu.Lock()
	// The first request and its one replay with the fresh token; every
	// later request is sent once and its 401 returned.
	if want := requests + 1; hits != want {
		t.Errorf("the resource saw %d requests, want %d", hits, want)
	}
	mu.Unlock()

	// The hold ends (the token is far from expiry, so no refresh is due):
	// the token is refreshed once more, not again and again.
	clock.Advance(10 * time.Minute)
	for range requests {
		send()
	}
	if n := srv.Stats().TokenRefreshes; n != 2 {
		t.Fatalf("after the hold window: %d rotations in all, want 2", n)
	}
}
