package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// The tests in this file prove that the outcome of one agent provisioning
// reaches every request that waited for it, whatever the other waiters do.
// They use a token source that hands out a new *Token on every call
// (credentials.FromOAuth2), so no two requests present the same token
// value, and one request that gives up while provisioning runs, as a
// client with a short deadline does. An outcome that is recorded by the
// waiters after the flight (instead of inside it) is then lost: the
// remaining waiters see a login state changed under them and go out as
// Bearer, and the next request provisions again.

// giveUpKey marks a request whose context the token source cancels right
// after handing out its token.
type giveUpKey struct{}

// waitersSource wraps a token source: it reports when n tokens were handed
// out, and cancels the context of a request marked with giveUpKey.
type waitersSource struct {
	src     credentials.TokenSource
	n       int32
	calls   atomic.Int32
	reached chan struct{}
	once    sync.Once
}

func newWaitersSource(src credentials.TokenSource, n int) *waitersSource {
	return &waitersSource{src: src, n: int32(n), reached: make(chan struct{})}
}

func (s *waitersSource) Token(ctx context.Context) (*credentials.Token, error) {
	tok, err := s.src.Token(ctx)
	if cancel, ok := ctx.Value(giveUpKey{}).(context.CancelFunc); ok {
		cancel()
	}
	if s.calls.Add(1) >= s.n {
		s.once.Do(func() { close(s.reached) })
	}
	return tok, err
}

// freshTokenSource is credentials.FromOAuth2 over a static oauth2 source:
// every call returns a new *Token for the same login.
func freshTokenSource(accessToken, account string) credentials.TokenSource {
	return credentials.FromOAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}), account, false)
}

// waiters is a ChatGPT login over src with the flag on against srv.
func waiters(t *testing.T, srv *identitytest.Server, src credentials.TokenSource) envOptions {
	return envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.ChatGPT(src), flag: featureflag.New(true)}
}

// giveUp sends one request that abandons provisioning right after it got
// its token, once the others have all got theirs, and checks that it
// failed with its own cancellation.
func giveUp(ctx context.Context, rt http.RoundTripper, url string, src *waitersSource) error {
	select {
	case <-src.reached:
	case <-ctx.Done():
		return ctx.Err()
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gctx = context.WithValue(gctx, giveUpKey{}, context.CancelFunc(cancel))
	status, echo, err := roundTripEcho(gctx, rt, url, "")
	if err == nil {
		return fmt.Errorf("the request that gave up got status %d mode %q, want its cancellation", status, echo.Mode)
	}
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("the request that gave up: %v, want context.Canceled", err)
	}
	return nil
}

// With the flag on and an identity being provisioned, 50 concurrent first
// requests (one of which gives up meanwhile) go out signed: none reaches
// the server as Bearer, and no fallback is counted. Before provisioning
// ran inside its own flight, the 49 that stayed all went out as Bearer with
// BearerFallbacks at 0.
func TestProvisionNoSilentBearerWithFreshTokens(t *testing.T) {
	acct := uniqueAccount("fresh")
	token := "tok-" + acct
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Latency: 150 * time.Millisecond, Times: 1})
	const n = 50
	src := newWaitersSource(freshTokenSource(token, acct), n-1)
	rt := newEnv(t, waiters(t, srv, src)).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	var bearer atomic.Int32
	err := startTogether(n, func(i int) error {
		if i == n-1 {
			return giveUp(ctx, rt, url, src)
		}
		status, echo, err := roundTripEcho(ctx, rt, url, "")
		if err != nil {
			return err
		}
		if echo.Mode == identitytest.ModeBearer {
			bearer.Add(1)
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeAssertion {
			return fmt.Errorf("status %d mode %q, want a signed request", status, echo.Mode)
		}
		return nil
	})
	st, s := srv.Stats(), rt.Stats()
	if err != nil {
		t.Errorf("%d of %d requests went out as Bearer (%d fallbacks counted); first failure: %v",
			bearer.Load(), n-1, s.BearerFallbacks, err)
	}
	if got := st.RequestsByMode[identitytest.ModeBearer]; got != 0 || s.BearerFallbacks != 0 {
		t.Errorf("server saw %d Bearer requests with %d fallbacks counted; want none", got, s.BearerFallbacks)
	}
	if st.AgentRegistrations != 1 {
		t.Errorf("%d agent registrations, want 1", st.AgentRegistrations)
	}
}

// A permanent agent-registration failure (a 403, or a 200 with an empty
// body) met by 200 concurrent first requests, one of which gives up while
// the registration runs, is one attempt: every request that stayed gets
// the provisioning error, and so does a request after them, without a
// second attempt. Before the failure was recorded inside the flight, the
// waiters lost it (they went out as Bearer) and the next request
// registered again.
func TestProvisionPermanentFailureOneAttempt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault identitytest.Fault
	}{
		{"403", identitytest.Fault{Status: http.StatusForbidden, Latency: 100 * time.Millisecond}},
		{"empty body", identitytest.Fault{Body: []byte(`{}`), Latency: 100 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := uniqueAccount("forbid")
			token := "tok-" + acct
			srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
			srv.InjectFault(identitytest.RouteAgentRegister, tc.fault)
			const n = 200
			src := newWaitersSource(freshTokenSource(token, acct), n-1)
			rt := newEnv(t, waiters(t, srv, src)).rt
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := srv.URL() + "/v1/responses"

			var wrong atomic.Int32
			err := startTogether(n, func(i int) error {
				if i == n-1 {
					return giveUp(ctx, rt, url, src)
				}
				status, echo, err := roundTripEcho(ctx, rt, url, "")
				if !errors.Is(err, transport.ErrProvisioning) {
					wrong.Add(1)
					return fmt.Errorf("status %d mode %q error %v, want ErrProvisioning", status, echo.Mode, err)
				}
				return nil
			})
			if err != nil {
				t.Errorf("%d of %d waiting requests did not get the failure; first: %v", wrong.Load(), n-1, err)
			}
			if _, _, err := roundTripEcho(ctx, rt, url, ""); !errors.Is(err, transport.ErrProvisioning) {
				t.Errorf("request after the failure: %v, want ErrProvisioning", err)
			}
			if got := srv.Stats().FaultsServed; got != 1 {
				t.Errorf("%d agent-registration attempts, want 1", got)
			}
		})
	}
}
