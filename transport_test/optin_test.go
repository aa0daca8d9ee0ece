package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// optIn is a ChatGPT login with the flag on against srv over base. The
// login names its user ("user-" + account): only a login whose account and
// user are known keeps its identity in an IdentityStore.
func optIn(srv *identitytest.Server, base http.RoundTripper, token, account string, store credentials.IdentityStore) envOptions {
	return envOptions{srv: srv, base: base, plain: true, credential: userLogin(token, account, "user-"+account),
		flag: featureflag.New(true), fleet: transport.Fleet{IdentityStore: store}}
}

// TestOptInRegistersAgentOnce: with the flag on, a ChatGPT login is
// provisioned once per identity — under concurrent first requests, and
// across two transports that share an IdentityStore.
func TestOptInRegistersAgentOnce(t *testing.T) {
	const token = "optin-once-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	// Keep the registration open so the concurrent requests all wait for it.
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Latency: 50 * time.Millisecond, Times: 1})
	account := uniqueAccount("optin")
	store := credentials.NewMemoryStore()
	base := newHTTPBase(t)
	rt1 := newEnv(t, optIn(srv, base, token, account, store)).rt
	rt2 := newEnv(t, optIn(srv, base, token, account, store)).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	runtimes := make(chan string, 64)
	err := startTogether(40, func(i int) error {
		rt, thread := rt1, ""
		if i%2 == 1 {
			rt = rt2
		}
		if i%4 < 2 {
			thread = fmt.Sprintf("optin-%d", i%3)
		}
		status, echo, err := roundTripEcho(ctx, rt, url, thread)
		if err != nil {
			return err
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeAssertion || echo.AccountID != account {
			return fmt.Errorf("status %d mode %q account %q", status, echo.Mode, echo.AccountID)
		}
		select {
		case runtimes <- echo.AgentRuntimeID:
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	close(runtimes)
	distinct := map[string]bool{}
	for id := range runtimes {
		distinct[id] = true
	}
	if st := srv.Stats(); st.AgentRegistrations != 1 || len(distinct) != 1 {
		t.Fatalf("%d agent registrations, %d runtimes used; want 1 and 1", st.AgentRegistrations, len(distinct))
	}
	if n := rt1.Stats().AgentRegistrations + rt2.Stats().AgentRegistrations; n != 1 {
		t.Fatalf("transports counted %d agent registrations, want 1", n)
	}
	stored, err := store.LoadAgentIdentity(ctx, credentials.Login{AccountID: account, UserID: "user-" + account})
	if err != nil || stored == nil {
		t.Fatalf("provisioned identity not stored: %v", err)
	}
	for id := range distinct {
		if stored.AgentRuntimeID != id {
			t.Fatalf("stored runtime %q, requests used %q", stored.AgentRuntimeID, id)
		}
	}
}

// TestOptInPersistsAcrossRestart: an identity provisioned into auth.json
// through a credentials.FileStore is reused by a later "process" (a new
// transport and a new FileStore on the same file): no second agent
// registration.
func TestOptInPersistsAcrossRestart(t *testing.T) {
	const token = "optin-restart-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	account := uniqueAccount("restart")
	path := writeLoginFile(t, token, account)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	base := newHTTPBase(t)

	rt1 := newEnv(t, optIn(srv, base, token, account, credentials.NewFileStore(path))).rt
	first := mustEcho(t, ctx, rt1, url, "restart-thread")
	if first.Mode != identitytest.ModeAssertion || srv.Stats().AgentRegistrations != 1 {
		t.Fatalf("first process: mode %q, %d agent registrations", first.Mode, srv.Stats().AgentRegistrations)
	}
	file, err := credentials.NewFileStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if file.AgentIdentityRecord == nil || file.AgentIdentityRecord.AgentRuntimeID != first.AgentRuntimeID {
		t.Fatal("auth.json does not hold the provisioned identity")
	}
	if file.Tokens == nil || file.Tokens.AccessToken != token {
		t.Fatal("persisting the identity lost the login")
	}

	// "Restart": nothing shared with rt1 but the file.
	rt2 := newEnv(t, optIn(srv, base, token, account, credentials.NewFileStore(path))).rt
	second := mustEcho(t, ctx, rt2, url, "restart-thread-2")
	if second.Mode != identitytest.ModeAssertion || second.AgentRuntimeID != first.AgentRuntimeID {
		t.Fatalf("second process: mode %q runtime %q, want the persisted runtime", second.Mode, second.AgentRuntimeID)
	}
	if st := srv.Stats(); st.AgentRegistrations != 1 || rt2.Stats().AgentRegistrations != 0 {
		t.Fatalf("restart registered a new agent: server %d, transport %d", st.AgentRegistrations, rt2.Stats().AgentRegistrations)
	}
}

// TestOptInUnavailableFallsBackToBearer: three 503s from agent registration
// put the login on Bearer for the cooldown (requests keep succeeding, no new
// attempt inside it); after the cooldown provisioning is tried again.
func TestOptInUnavailableFallsBackToBearer(t *testing.T) {
	const token = "optin-fallback-token"
	clk := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}, Now: clk.Now})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: 503, Times: 3})
	account := uniqueAccount("fallback")
	o := optIn(srv, newHTTPBase(t), token, account, credentials.NewMemoryStore())
	o.options = func(o *transport.Options) {
		testhooks.Of(o).Now = clk.Now
		o.Tuning.ProvisioningCooldown = 2 * time.Minute
	}
	rt := newEnv(t, o).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	expectBearer := func(step string) {
		t.Helper()
		srv.ResetStats()
		echo := mustEcho(t, ctx, rt, url, "fallback-thread")
		h := onlySeen(t, srv).Header
		if echo.Mode != identitytest.ModeBearer || !equalStrings(h.Values(headers.Authorization), []string{"Bearer " + token}) {
			t.Fatalf("%s: mode %q, want exactly the Bearer token", step, echo.Mode)
		}
		checkRouting(t, h, account, false)
	}
	expectBearer("during the outage") // resets the server's counters first
	if got := srv.Stats().FaultsServed; got != 3 {
		t.Fatalf("agent registration attempted %d times, want 3", got)
	}
	if s := rt.Stats(); s.BearerFallbacks != 1 || s.AgentRegistrations != 0 {
		t.Fatalf("stats %+v: want 1 Bearer fallback, 0 agent registrations", s)
	}

	clk.Advance(time.Minute)
	expectBearer("inside the cooldown")
	if st := srv.Stats(); st.FaultsServed != 0 || st.AgentRegistrations != 0 {
		t.Fatalf("inside the cooldown: %d more attempts, %d registrations; want none", st.FaultsServed, st.AgentRegistrations)
	}
	if s := rt.Stats(); s.BearerFallbacks != 1 {
		t.Fatalf("BearerFallbacks = %d, want still 1", s.BearerFallbacks)
	}

	clk.Advance(time.Minute + time.Second)
	srv.ResetStats()
	echo := mustEcho(t, ctx, rt, url, "fallback-thread")
	if echo.Mode != identitytest.ModeAssertion || srv.Stats().AgentRegistrations != 1 {
		t.Fatalf("after the cooldown: mode %q, %d agent registrations; want assertion after 1", echo.Mode, srv.Stats().AgentRegistrations)
	}
	checkAssertion(t, srv, onlySeen(t, srv).Header.Values(headers.Authorization), echo.AgentRuntimeID, "fallback-thread")
}

// TestOptInForbiddenIsAClearError: a 403 from agent registration is a
// permanent provisioning error — typed, not temporary, tried once, and
// free of the access token.
func TestOptInForbiddenIsAClearError(t *testing.T) {
	const token = "optin-forbidden-secret-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: 403})
	rt := newEnv(t, optIn(srv, newHTTPBase(t), token, uniqueAccount("forbidden"), credentials.NewMemoryStore())).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	for attempt := range 2 {
		body := newCountingBody(`{}`)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/v1/responses", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
			t.Fatalf("attempt %d: got a response (status %d), want an error", attempt, resp.StatusCode)
		}
		if !errors.Is(err, transport.ErrProvisioning) {
			t.Fatalf("attempt %d: err %v, want ErrProvisioning", attempt, err)
		}
		var ae *transport.Error
		if !errors.As(err, &ae) || ae.Temporary() || transport.IsTemporary(err) {
			t.Fatalf("attempt %d: a 403 must be a permanent *transport.Error: %v", attempt, err)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(verb, err); strings.Contains(s, token) {
				t.Fatalf("attempt %d: %s of the error contains the access token", attempt, verb)
			}
		}
		if !strings.Contains(err.Error(), "403") {
			t.Errorf("attempt %d: error %q does not say 403", attempt, err)
		}
		if n := body.closes.Load(); n != 1 {
			t.Fatalf("attempt %d: body closed %d times, want 1", attempt, n)
		}
	}
	if st := srv.Stats(); st.FaultsServed != 1 || len(srv.Requests()) != 0 {
		t.Fatalf("403 was tried %d times and %d requests were sent; want 1 attempt and none", st.FaultsServed, len(srv.Requests()))
	}
}
