package transport_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// An AuthAPI that answers 401 to every task registration (a revoked
// workspace, a proxy) used to get a new agent registered every 30 s for as
// long as requests came, each replacement overwriting the IdentityStore
// (auth.json: the identity the Codex CLI uses). A runtime registered
// moments ago and refused at once says the runtime is not the problem: it
// is kept and retried with a growing hold instead of replaced, and a
// replacement is stored only once one of its tasks was accepted, so the
// stored identity stays until then.

type rfrClock struct{ ns atomic.Int64 }

func (c *rfrClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *rfrClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func rfrTransport(t *testing.T, srv *identitytest.Server, base http.RoundTripper, tok credentials.Token, store credentials.IdentityStore, clock *rfrClock) *transport.Transport {
	t.Helper()
	return newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.ChatGPT(credentials.StaticTokenSource(tok)),
		flag: featureflag.New(true), fleet: transport.Fleet{IdentityStore: store}, defaultStore: store == nil,
		options: func(o *transport.Options) { testhooks.Of(o).Now = clock.Now }}).rt
}

func rfrRounds(ctx context.Context, srv *identitytest.Server, rt http.RoundTripper, clock *rfrClock, rounds int, every time.Duration) {
	for range rounds {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/responses", nil)
		if resp, err := rt.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
		clock.Advance(every)
	}
}

func TestTaskRegistration401ForeverDoesNotReprovisionForever(t *testing.T) {
	clock := &rfrClock{}
	clock.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	const tok = "tok-rfr-login"
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{tok}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusUnauthorized})
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	rt := rfrTransport(t, srv, base, credentials.Token{AccessToken: identity.Secret(tok), AccountID: "acct-rfr", UserID: "user-rfr"}, credentials.NewMemoryStore(), clock)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rfrRounds(ctx, srv, rt, clock, 20, 2*time.Minute) // 40 minutes of traffic
	if n := srv.Stats().AgentRegistrations; n > 1 {
		t.Fatalf("an AuthAPI refusing every task registration got %d agent registrations from 20 requests over 40 min, want 1", n)
	}
	// Much later, replacements are still at most one per cooldown (1 h).
	rfrRounds(ctx, srv, rt, clock, 60, 10*time.Minute) // 10 more hours
	if n := srv.Stats().AgentRegistrations; n > 1+10 {
		t.Fatalf("%d agent registrations after 10 more hours, want at most one per hour", n)
	}
}

// The stored identity (the Codex CLI's) is rejected, and so is the fresh
// runtime that replaces it: the store keeps the old record, because the
// replacement never got a task accepted. Once task registrations are
// accepted again, the replacement is stored.
func TestRefusedReplacementIsNotStored(t *testing.T) {
	clock := &rfrClock{}
	clock.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	const tok = "tok-rfr-store"
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{tok}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	login := credentials.Login{AccountID: "acct-rfr-store", UserID: "user-rfr-store"}
	cli := identity.Record{AgentRuntimeID: "rt-rfr-cli", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: login.AccountID, ChatGPTUserID: login.UserID}
	if err := srv.RegisterRuntime(cli); err != nil {
		t.Fatal(err)
	}
	store := credentials.NewMemoryStore()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.SaveAgentIdentity(ctx, &cli); err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusUnauthorized})
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	rt := rfrTransport(t, srv, base, credentials.Token{AccessToken: identity.Secret(tok), AccountID: login.AccountID, UserID: login.UserID}, store, clock)
	rfrRounds(ctx, srv, rt, clock, 5, 2*time.Minute)
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Fatalf("%d agent registrations, want 1 (one replacement of the rejected stored identity)", n)
	}
	rec, err := store.LoadAgentIdentity(ctx, login)
	if err != nil || rec == nil || rec.AgentRuntimeID != cli.AgentRuntimeID {
		t.Fatalf("stored identity %v (%v), want the old record %s kept while its replacement never had a task accepted", rec, err, cli.AgentRuntimeID)
	}

	srv.ClearFaults(identitytest.RouteTaskRegister)
	clock.Advance(time.Hour) // past any hold
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/responses", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the AuthAPI recovered: status %d", resp.StatusCode)
	}
	runtimes := srv.Runtimes()
	rec, err = store.LoadAgentIdentity(ctx, login)
	if err != nil || rec == nil || rec.AgentRuntimeID == cli.AgentRuntimeID {
		t.Fatalf("stored identity %v (%v) after the replacement signed, want the replacement", rec, err)
	}
	known := false
	for _, r := range runtimes {
		known = known || r.RuntimeID == rec.AgentRuntimeID
	}
	if !known {
		t.Fatalf("stored runtime %s is not one the server registered", rec.AgentRuntimeID)
	}
}
