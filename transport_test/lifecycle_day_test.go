package transport_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/testhooks"
)

// A simulated day of a service on a ChatGPT login (fake clock, token
// lifetime 1 h, one request a minute), flag off and flag on: no request
// fails, the login is refreshed once per lifetime, and while a refresh is
// in flight (the token endpoint answers slowly) requests made with a
// still-valid token do not wait for it.
func TestLifecycleSimulatedDay(t *testing.T) {
	for _, flagOn := range []bool{false, true} {
		name := "flag off"
		if flagOn {
			name = "flag on"
		}
		t.Run(name, func(t *testing.T) { simulateDay(t, flagOn) })
	}
}

func simulateDay(t *testing.T, flagOn bool) {
	const (
		lifetime = time.Hour
		step     = time.Minute
		day      = 24 * time.Hour
		slow     = 150 * time.Millisecond // token endpoint latency
	)
	clock := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{Now: clock.Now, TokenLifetime: lifetime})
	account := uniqueAccount("day")
	login, err := srv.IssueLogin(identitytest.LoginClaims{AccountID: account, UserID: "user-day"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := identitytest.WriteAuthJSON(home, login, clock.Now()); err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Latency: slow})

	base := newHTTPBase(t)
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
	t.Cleanup(src.Close)
	cfg := loopbackConfig(srv, nil)
	cfg.TokenSource = src
	cfg.Flag = featureflag.New(flagOn)
	cfg.IdentityStore = credentials.NewFileStore(filepath.Join(home, credentials.AuthFileName))
	testhooks.Of(&cfg).Now = clock.Now
	rt := newTransport(t, base, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	send := func() time.Duration {
		start := time.Now()
		code, e, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/day", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("at %s: status %d, %v", clock.Now().Format(time.TimeOnly), code, err)
		}
		want := identitytest.ModeBearer
		if flagOn {
			want = identitytest.ModeAssertion
		}
		if e.Mode != want {
			t.Fatalf("mode %q, want %q", e.Mode, want)
		}
		return time.Since(start)
	}

	requests, waitedChecks := 0, 0
	exp := login.Expiry // of the token in use; the server issues for `lifetime` by the fake clock
	refreshes := func() int { return srv.Stats().TokenRefreshes }
	for elapsed := time.Duration(0); elapsed < day; elapsed += step {
		before := refreshes()
		if clock.Now().After(exp) {
			t.Fatalf("at %s the token in use has expired: no refresh ran ahead", clock.Now().Format(time.TimeOnly))
		}
		send()
		requests++
		// While a refresh is in flight (the endpoint takes `slow`), more
		// requests at the same moment use the valid token at once.
		if !clock.Now().Before(exp.Add(-credentials.RefreshWindow)) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var worst time.Duration
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d := send()
					mu.Lock()
					worst = max(worst, d)
					mu.Unlock()
				}()
			}
			wg.Wait()
			requests += 8
			waitedChecks++
			if worst >= slow {
				t.Fatalf("a request with a valid token waited %v for the refresh", worst)
			}
			// Let the refresh land before the clock moves on.
			deadline := time.Now().Add(5 * time.Second)
			for refreshes() == before {
				if time.Now().After(deadline) {
					t.Fatal("the background refresh never completed")
				}
				time.Sleep(5 * time.Millisecond)
			}
			exp = clock.Now().Add(lifetime).Truncate(time.Second)
		}
		clock.Advance(step)
	}
	st := srv.Stats()
	// Each token is refreshed once, RefreshWindow before it expires: one
	// refresh per (lifetime - window), never more.
	lo, hi := int(day/lifetime), int(day/(lifetime-credentials.RefreshWindow))+1
	if st.TokenRefreshes < lo || st.TokenRefreshes > hi {
		t.Fatalf("%d refreshes in a day, want one per token lifetime (%d..%d)", st.TokenRefreshes, lo, hi)
	}
	if waitedChecks != st.TokenRefreshes {
		t.Errorf("%d refreshes ran ahead of expiry, %d in all", waitedChecks, st.TokenRefreshes)
	}
	if st.Rejections != 0 {
		t.Fatalf("rejections: %v", st.RejectionsByReason)
	}
	if got := rt.Stats().Failures; got != 0 {
		t.Fatalf("%d failed requests", got)
	}
	t.Logf("%d requests, %d refreshes, %d agent registrations", requests, st.TokenRefreshes, st.AgentRegistrations)
}
