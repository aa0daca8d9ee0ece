package transport_test

// Regression tests for defects found in review: each failed before its fix.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// A 401 on a request whose body cannot be replayed still drops the revoked
// task, so the next request (also not replayable) succeeds on a new task
// instead of being rejected until the task idles out.
func TestReviewNonReplayable401DropsTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{})
	ident := newRuntime(t, srv, uniqueAccount("rv401"), false)
	rt := newTransport(t, newHTTPBase(t), loopbackConfig(srv, agentCreds(ident)))
	url := srv.URL() + "/v1/responses"
	first := mustEcho(t, ctx, rt, url, "thread-r")
	srv.RevokeTask(first.TaskID)

	send := func() int {
		// io.NopCloser hides the reader's type, so no GetBody is set.
		req, _ := http.NewRequestWithContext(transport.WithThread(ctx, "thread-r"), http.MethodPost, url,
			io.NopCloser(strings.NewReader(`{}`)))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(); got != http.StatusUnauthorized {
		t.Fatalf("first non-replayable request after revocation: %d, want 401", got)
	}
	if got := send(); got != http.StatusOK {
		t.Fatalf("second non-replayable request: %d, want 200 on a new task", got)
	}
	if n := srv.Stats().RegistrationsByExternalRef["thread-r"]; n != 2 {
		t.Fatalf("registrations for thread-r = %d, want 2", n)
	}
}

// Two ChatGPT logins without an account id, in one process and with the
// default store, get two identities: nothing tells them apart in a store,
// so neither may reuse the other's.
func TestReviewAccountlessLoginsDoNotShareIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-a", "tok-b"}})
	runtimes := map[string]bool{}
	for _, tok := range []string{"tok-a", "tok-b"} {
		cfg := loopbackConfig(srv, chatGPTCreds(tok, "", false))
		cfg.IdentityStore = nil // the process-wide default
		cfg.Flag = featureflag.New(true)
		rt := newTransport(t, newHTTPBase(t), cfg)
		echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "")
		runtimes[echo.AgentRuntimeID] = true
	}
	if len(runtimes) != 2 || srv.Stats().AgentRegistrations != 2 {
		t.Fatalf("runtimes %v, agent registrations %d: want two identities", runtimes, srv.Stats().AgentRegistrations)
	}
}

// switchingSource returns one login, then another account's.
type switchingSource struct {
	mu  sync.Mutex
	tok *credentials.Token
}

func (s *switchingSource) Token(context.Context) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *switchingSource) set(tok credentials.Token) {
	s.mu.Lock()
	s.tok = &tok
	s.mu.Unlock()
}

// When the token source starts returning another account (codex login as
// someone else), the transport provisions that account's identity instead
// of signing as the previous one; a refreshed token of the same account
// keeps the identity.
func TestReviewAccountSwitchReprovisions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-1", "tok-1b", "tok-2"}})
	acct1, acct2 := uniqueAccount("sw1"), uniqueAccount("sw2")
	src := &switchingSource{}
	src.set(credentials.Token{AccessToken: "tok-1", AccountID: acct1})
	cfg := loopbackConfig(srv, nil)
	cfg.TokenSource = src
	cfg.Flag = featureflag.New(true)
	rt := newTransport(t, newHTTPBase(t), cfg)
	url := srv.URL() + "/v1/responses"

	e1 := mustEcho(t, ctx, rt, url, "thread-s")
	src.set(credentials.Token{AccessToken: "tok-1b", AccountID: acct1}) // refresh, same account
	e1b := mustEcho(t, ctx, rt, url, "thread-s")
	src.set(credentials.Token{AccessToken: "tok-2", AccountID: acct2})
	e2 := mustEcho(t, ctx, rt, url, "thread-s")

	if e1.AccountID != acct1 || e1b.AgentRuntimeID != e1.AgentRuntimeID {
		t.Fatalf("refresh of the same login changed identity: %+v then %+v", e1, e1b)
	}
	if e2.AccountID != acct2 || e2.AgentRuntimeID == e1.AgentRuntimeID {
		t.Fatalf("after the account switch: %+v (before %+v)", e2, e1)
	}
	if n := srv.Stats().AgentRegistrations; n != 2 {
		t.Fatalf("agent registrations = %d, want 2", n)
	}
}

// One provisioning outage is one fallback, however many requests waited
// for it.
func TestReviewFallbackCountedOncePerOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok"}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: http.StatusServiceUnavailable})
	cfg := loopbackConfig(srv, chatGPTCreds("tok", uniqueAccount("fb"), false))
	cfg.Flag = featureflag.New(true)
	rt := newTransport(t, newHTTPBase(t), cfg)
	var bearer atomic.Int32
	err := runWorkers(10, 10, func(int) error {
		status, echo, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "")
		if err == nil && (status != http.StatusOK || echo.Mode != identitytest.ModeBearer) {
			err = errors.New("not served with Bearer during the outage")
		}
		if err == nil {
			bearer.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Stats().BearerFallbacks; got != 1 {
		t.Fatalf("BearerFallbacks = %d for one outage, want 1", got)
	}
}

// New rejects settings that could only fail later: a static ChatGPT token
// that cannot be sent, a TokenSource with a credential that ignores it, and
// a plain-http AuthAPI base on a remote host (agent registration sends the
// access token there).
func TestReviewNewRejectsUnusableSettings(t *testing.T) {
	cases := map[string]transport.Config{
		"token with CRLF": {Credentials: chatGPTCreds("tok\r\nX-Evil: 1", "acct", false)},
		"empty token":     {Credentials: chatGPTCreds("", "acct", false)},
		"account with LF": {Credentials: chatGPTCreds("tok", "a\nb", false)},
		"TokenSource with API key": {
			Credentials: apiKeyCreds("sk-1"),
			TokenSource: credentials.StaticTokenSource(credentials.Token{AccessToken: "tok"}),
		},
		"http AuthAPI on a remote host":                   {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "http://auth.example.com/api/accounts"},
		"AuthAPI without scheme":                          {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "auth.example.com"},
		"http AuthAPI on a remote host, insecure allowed": {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "http://auth.internal/api", AllowInsecureHTTP: true},
	}
	for name, cfg := range cases {
		if _, err := transport.New(nil, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "tok\r\n") {
			t.Errorf("%s: error repeats the token", name)
		}
	}
	ok := map[string]transport.Config{
		"loopback http AuthAPI":          {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "http://127.0.0.1:9/api"},
		"TokenSource alone is a ChatGPT": {TokenSource: credentials.StaticTokenSource(credentials.Token{AccessToken: "tok"})},
	}
	for name, cfg := range ok {
		if _, err := transport.New(nil, cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
