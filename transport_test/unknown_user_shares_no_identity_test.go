package transport_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// A login whose user cannot be established (credentials.Token.UserID "")
// shares no agent identity beyond its own token: two logins of one
// workspace without a user claim, in two transports sharing an
// IdentityStore, used to be one login Login{account, ""} to the store, so
// the second login's requests were signed with the first login's runtime
// without the AuthAPI ever seeing the second token.

// unkSource hands out one fixed token.
type unkSource struct{ tok credentials.Token }

func (s *unkSource) Token(context.Context) (*credentials.Token, error) {
	t := s.tok
	return &t, nil
}

// unkTransport is a ChatGPT login over src with the flag on against srv,
// keeping its identity in store.
func unkTransport(t *testing.T, srv *identitytest.Server, base http.RoundTripper, src credentials.TokenSource, store credentials.IdentityStore) *transport.Transport {
	return newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.ChatGPT(src), flag: featureflag.New(true),
		fleet: transport.Fleet{IdentityStore: store}, defaultStore: store == nil}).rt
}

// unkSend sends one request and returns its status and the runtime the
// server saw it signed with ("" for Bearer or a failure).
func unkSend(ctx context.Context, t *testing.T, srv *identitytest.Server, rt http.RoundTripper) (int, string) {
	t.Helper()
	before := len(srv.Requests())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/responses", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, ""
	}
	resp.Body.Close()
	seen := srv.Requests()
	if len(seen) == before {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, seen[len(seen)-1].Echo.AgentRuntimeID
}

func TestUnknownUserSharesNoIdentityThroughTheStore(t *testing.T) {
	const acct = "acct-unk-team"
	first := credentials.Token{AccessToken: "tok-unk-user-1", AccountID: acct}  // user unknown
	second := credentials.Token{AccessToken: "tok-unk-user-2", AccountID: acct} // another user, unknown
	srv, err := identitytest.NewServer(identitytest.Options{
		AccessTokens: []string{first.AccessToken.Reveal()}, // the second token is never accepted
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	store := credentials.NewMemoryStore()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	rtA := unkTransport(t, srv, base, &unkSource{tok: first}, store)
	st, runtimeA := unkSend(ctx, t, srv, rtA)
	if st != http.StatusOK || runtimeA == "" {
		t.Fatalf("first login: status %d, runtime %q; want a signed 200", st, runtimeA)
	}
	if rec, err := store.LoadAgentIdentity(ctx, credentials.Login{AccountID: acct}); err != nil || rec != nil {
		t.Errorf("the identity of a login without a user was stored under Login{%q, \"\"} (%v)", acct, err)
	}

	rtB := unkTransport(t, srv, base, &unkSource{tok: second}, store)
	if _, runtimeB := unkSend(ctx, t, srv, rtB); runtimeB == runtimeA {
		t.Fatalf("a second login of unknown user (its token never accepted by the AuthAPI) was signed with the first login's runtime %s", runtimeA)
	}
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Errorf("%d agent registrations, want 1 (the second token is refused)", n)
	}
}

// credentials.FromOAuth2 reads the user (and, when the caller names no
// account, the account) from a JWT access token's
// https://api.openai.com/auth claims, so oauth2 logins are bound like
// auth.json ones: one user's transports share its identity through the
// store, another user of the same workspace gets its own.
func TestFromOAuth2LoginsBindByUserThroughTheStore(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const acct = "acct-unk-oauth2"
	alice, err := srv.IssueLogin(identitytest.Login{AccountID: acct, UserID: "user-unk-alice"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := srv.IssueLogin(identitytest.Login{AccountID: acct, UserID: "user-unk-bob"})
	if err != nil {
		t.Fatal(err)
	}
	oauth := func(access, account string) credentials.TokenSource {
		return credentials.FromOAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access, TokenType: "Bearer"}), account, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tok, err := oauth(alice.AccessToken, "").Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccountID != acct || tok.UserID != "user-unk-alice" {
		t.Fatalf("FromOAuth2 without an account: login {%q %q}, want the claims' {%q %q}", tok.AccountID, tok.UserID, acct, "user-unk-alice")
	}
	tok, err = oauth(alice.AccessToken, "acct-unk-explicit").Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccountID != "acct-unk-explicit" || tok.UserID != "user-unk-alice" {
		t.Fatalf("FromOAuth2 with an account: login {%q %q}, want the explicit account and the claims' user", tok.AccountID, tok.UserID)
	}

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	store := credentials.NewMemoryStore()
	runtimes := map[string]string{}
	for _, c := range []struct {
		name   string
		access string
	}{{"alice-1", alice.AccessToken}, {"alice-2", alice.AccessToken}, {"bob", bob.AccessToken}} {
		rt := unkTransport(t, srv, base, oauth(c.access, ""), store)
		st, runtime := unkSend(ctx, t, srv, rt)
		if st != http.StatusOK || runtime == "" {
			t.Fatalf("%s: status %d, runtime %q; want a signed 200", c.name, st, runtime)
		}
		runtimes[c.name] = runtime
	}
	if runtimes["alice-1"] != runtimes["alice-2"] {
		t.Errorf("two transports of one oauth2 login did not share its stored identity: %s, %s", runtimes["alice-1"], runtimes["alice-2"])
	}
	if runtimes["bob"] == runtimes["alice-1"] {
		t.Errorf("another user of the workspace was signed with alice's runtime %s", runtimes["bob"])
	}
	if n := srv.Stats().AgentRegistrations; n != 2 {
		t.Errorf("%d agent registrations, want 2 (one per user)", n)
	}
}
