package transport_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// A simulated day of a service on a ChatGPT login (fake clock, token
// lifetime 1 h, one request a minute), flag off and flag on: no request
// fails, the login is refreshed once per lifetime, and while a refresh is
// in flight (held at the token endpoint until the test lets it go)
// requests made with a still-valid token do not wait for it.
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
	)
	clock := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{Now: clock.Now, TokenLifetime: lifetime})
	account := uniqueAccount("day")
	login, err := srv.IssueLogin(identitytest.Login{AccountID: account, UserID: "user-day"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, clock.Now()); err != nil {
		t.Fatal(err)
	}
	base := newHTTPBase(t)
	gate := newRefreshGate(base)
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
		Coordinator: credentials.NewAuthFileCoordinator(home),
		TokenURL:    srv.TokenURL(),
		HTTPClient:  &http.Client{Transport: gate},
		Getenv:      func(string) string { return "" },
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.ChatGPT(src), flag: featureflag.New(flagOn),
		fleet:   transport.Fleet{IdentityStore: credentials.NewFileStore(filepath.Join(home, credentials.AuthFileName))},
		options: func(o *transport.Options) { testhooks.Of(o).Now = clock.Now }}).rt

	// Each simulated minute is bounded on its own, not the day as a whole:
	// a day is 1,648 requests, seconds idle and tens of seconds with the
	// CPU saturated (.ci/stress), and a bound on all of them would be one
	// on the machine's speed.
	var ctx context.Context
	send := func() {
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
	}

	requests, waitedChecks := 0, 0
	exp := login.Expiry // of the token in use; the server issues for `lifetime` by the fake clock
	refreshes := func() int { return srv.Stats().TokenRefreshes }
	for elapsed := time.Duration(0); elapsed < day; elapsed += step {
		stepCtx, cancel := context.WithTimeout(context.Background(), testTimeout)
		ctx = stepCtx
		before := refreshes()
		if clock.Now().After(exp) {
			t.Fatalf("at %s the token in use has expired: no refresh ran ahead", clock.Now().Format(time.TimeOnly))
		}
		// In the refresh window, the refresh this minute starts is held
		// at the token endpoint until the requests below are done.
		inWindow := !clock.Now().Before(exp.Add(-credentials.RefreshWindow))
		if inWindow {
			gate.hold()
		}
		send()
		requests++
		if inWindow {
			// More requests at the same moment use the valid token at
			// once: they complete while the refresh cannot. (One that
			// waited for the refresh would wait until ctx's deadline,
			// and fail.)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(send)
			}
			wg.Wait()
			requests += 8
			waitedChecks++
			if refreshes() != before {
				t.Fatal("a refresh completed through the held token endpoint")
			}
			// The refresh did start, and waits at the gate.
			select {
			case <-gate.arrived:
			case <-ctx.Done():
				t.Fatal("no refresh started in the refresh window")
			}
			gate.release()
			// Let the refresh land before the clock moves on.
			for refreshes() == before {
				if ctx.Err() != nil {
					t.Fatal("the background refresh never completed")
				}
				time.Sleep(5 * time.Millisecond) // the server's count has no event to wait on
			}
			exp = clock.Now().Add(lifetime).Truncate(time.Second)
		}
		cancel()
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

// refreshGate is the token endpoint's client transport of the simulated
// day: while held, a token request signals arrived and waits until
// release (or its context ends) before it is sent.
type refreshGate struct {
	next    http.RoundTripper
	arrived chan struct{}

	mu   sync.Mutex
	open chan struct{} // closed by release; nil when not held
}

func newRefreshGate(next http.RoundTripper) *refreshGate {
	return &refreshGate{next: next, arrived: make(chan struct{}, 1)}
}

// hold makes the token requests from now on wait for release.
func (g *refreshGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

// release lets the held token requests, and the next ones, through.
func (g *refreshGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
}

func (g *refreshGate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if open != nil {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case <-open:
		case <-req.Context().Done():
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, req.Context().Err()
		}
	}
	return g.next.RoundTrip(req)
}
