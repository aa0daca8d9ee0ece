package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// loginSource is a token source whose token the test sets; fresh makes
// every call return a new *Token value (as credentials.FromOAuth2 does).
type loginSource struct {
	mu    sync.Mutex
	tok   credentials.Token
	fresh bool
	ptr   *credentials.Token
}

func newLoginSource(tok credentials.Token) *loginSource {
	s := &loginSource{}
	s.set(tok)
	return s
}

func (s *loginSource) set(tok credentials.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = tok
	s.ptr = &tok
}

func (s *loginSource) Token(context.Context) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh {
		c := s.tok
		return &c, nil
	}
	return s.ptr, nil
}

// loginTransport is a ChatGPT login over src with the flag on against srv,
// keeping its identity in store (nil: the process-wide default).
func loginTransport(t *testing.T, srv *identitytest.Server, base http.RoundTripper, src credentials.TokenSource, store credentials.IdentityStore) *transport.Transport {
	t.Helper()
	return newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.ChatGPT(src),
		flag: featureflag.New(true), fleet: transport.Fleet{IdentityStore: store}, defaultStore: store == nil}).rt
}

// TestBindingIdentityToLogin is the binding invariant as a table: after a
// first login (token A of account X, user 1) got its identity, a second
// login sends a request, in the same transport (its source switches), in a
// second transport without a store, in a second transport sharing the
// first one's store, or in a second transport with its own store. The table
// says whether the first login's runtime signs, a new one, or nobody (an
// error), and how many agents were registered.
func TestBindingIdentityToLogin(t *testing.T) {
	const (
		same    = "same runtime"
		fresh   = "new runtime"
		refused = "error"
	)
	type want struct {
		runtime string
		regs    int
	}
	type setup int
	const (
		oneTransport setup = iota
		twoDefault
		twoSharedStore
		twoSeparateStores
	)
	setups := []string{"one transport", "two transports", "two transports, one store", "two transports, separate stores"}
	rows := []struct {
		name   string
		second func(first credentials.Token, other string) credentials.Token
		want   [4]want
	}{
		{"same token", func(f credentials.Token, _ string) credentials.Token { return f },
			[4]want{{same, 1}, {same, 1}, {same, 1}, {fresh, 2}}},
		{"rotated token of the same user", func(f credentials.Token, _ string) credentials.Token {
			f.AccessToken += "-rotated"
			return f
		}, [4]want{{same, 1}, {fresh, 2}, {same, 1}, {fresh, 2}}},
		{"other user of the same account", func(f credentials.Token, _ string) credentials.Token {
			f.AccessToken += "-user2"
			f.UserID = "user-2"
			return f
		}, [4]want{{fresh, 2}, {fresh, 2}, {fresh, 2}, {fresh, 2}}},
		{"other account", func(f credentials.Token, other string) credentials.Token {
			f.AccessToken += "-acct2"
			f.AccountID = other
			return f
		}, [4]want{{fresh, 2}, {fresh, 2}, {fresh, 2}, {fresh, 2}}},
		// A token the AuthAPI never accepted claiming the first login's
		// account and user: it gets that identity only from the same token
		// source (a rotation) or from a store the operator shares between
		// the two; otherwise its own provisioning is refused.
		{"token rejected by the AuthAPI", func(f credentials.Token, _ string) credentials.Token {
			f.AccessToken = identity.Secret("never-accepted-" + f.AccountID)
			return f
		}, [4]want{{same, 1}, {refused, 1}, {same, 1}, {refused, 1}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, row := range rows {
		for si, name := range setups {
			t.Run(row.name+"/"+name, func(t *testing.T) {
				acct, other := uniqueAccount("bind"), uniqueAccount("bind-other")
				first := credentials.Token{AccessToken: identity.Secret("tok-" + acct), AccountID: acct, UserID: "user-1"}
				second := row.second(first, other)
				accepted := []string{first.AccessToken.Reveal()}
				if !strings.HasPrefix(second.AccessToken.Reveal(), "never-accepted-") {
					accepted = append(accepted, second.AccessToken.Reveal())
				}
				srv := newIdentityServer(t, identitytest.Options{AccessTokens: accepted})
				base := newHTTPBase(t)
				url := srv.URL() + "/v1/responses"
				store := credentials.NewMemoryStore()
				var storeA, storeB credentials.IdentityStore
				switch setup(si) {
				case twoSharedStore:
					storeA, storeB = store, store
				case twoSeparateStores:
					storeA, storeB = store, credentials.NewMemoryStore()
				}
				srcA := newLoginSource(first)
				rtA := loginTransport(t, srv, base, srcA, storeA)
				echoA := mustEcho(t, ctx, rtA, url, "bind-thread")
				if echoA.Mode != identitytest.ModeAssertion {
					t.Fatalf("first login: mode %q, want an assertion", echoA.Mode)
				}

				rtB := rtA
				if setup(si) == oneTransport {
					srcA.set(second)
				} else {
					rtB = loginTransport(t, srv, base, newLoginSource(second), storeB)
				}
				status, echoB, err := roundTripEcho(ctx, rtB, url, "bind-thread")
				got := refused
				switch {
				case err != nil || status != http.StatusOK:
					if err != nil && !errors.Is(err, transport.ErrProvisioning) {
						t.Errorf("second login: %v, want an ErrProvisioning", err)
					}
				case echoB.Mode != identitytest.ModeAssertion:
					t.Fatalf("second login sent as %q", echoB.Mode)
				case echoB.AgentRuntimeID == echoA.AgentRuntimeID:
					got = same
				default:
					got = fresh
				}
				w := row.want[si]
				if regs := srv.Stats().AgentRegistrations; got != w.runtime || regs != w.regs {
					t.Fatalf("second login: %s after %d agent registrations; want %s after %d", got, regs, w.runtime, w.regs)
				}
				if got == refused && strings.Contains(fmt.Sprint(err), second.AccessToken.Reveal()) {
					t.Fatalf("error shows the token: %v", err)
				}
			})
		}
	}
}

// A source handing out a new *Token per call (as FromOAuth2 does): 50
// concurrent first requests while provisioning takes 150 ms all go out
// signed, none silently as Bearer.
func TestBindingNoSilentBearerWhileProvisioning(t *testing.T) {
	acct := uniqueAccount("silent")
	tok := credentials.Token{AccessToken: identity.Secret("tok-" + acct), AccountID: acct, UserID: "u"}
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{tok.AccessToken.Reveal()}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Latency: 150 * time.Millisecond, Times: 1})
	src := newLoginSource(tok)
	src.fresh = true
	rt := loginTransport(t, srv, newHTTPBase(t), src, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := startTogether(50, func(i int) error {
		// Arrivals spread over the provisioning, as traffic arrives.
		time.Sleep(time.Duration(i%25) * 5 * time.Millisecond)
		status, echo, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "")
		if err != nil {
			return err
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeAssertion {
			return fmt.Errorf("request %d: status %d mode %q, want a signed request", i, status, echo.Mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := rt.Stats(); s.BearerFallbacks != 0 || srv.Stats().AgentRegistrations != 1 {
		t.Fatalf("%d fallbacks, %d agent registrations; want 0 and 1", s.BearerFallbacks, srv.Stats().AgentRegistrations)
	}
}

// 200 concurrent first requests on an agent registration answering 403
// make exactly one attempt: the permanent failure is recorded before the
// flight ends.
func TestBindingPermanentFailureSharedByTheFlight(t *testing.T) {
	acct := uniqueAccount("forbid")
	tok := credentials.Token{AccessToken: identity.Secret("tok-" + acct), AccountID: acct, UserID: "u"}
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{tok.AccessToken.Reveal()}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: 403, Latency: 20 * time.Millisecond})
	rt := loginTransport(t, srv, newHTTPBase(t), newLoginSource(tok), nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := startTogether(200, func(i int) error {
		// Arrivals spread across the end of the flight.
		time.Sleep(time.Duration(i%40) * time.Millisecond)
		_, _, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "")
		if !errors.Is(err, transport.ErrProvisioning) {
			return fmt.Errorf("request %d: %v, want ErrProvisioning", i, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().FaultsServed; n != 1 {
		t.Fatalf("%d agent-registration attempts, want 1", n)
	}
}

// A token source alternating between two accounts keeps each account's
// identity and thread task: 100 requests on one thread register two tasks,
// not one per switch.
func TestBindingAccountFlipFlop(t *testing.T) {
	a, b := uniqueAccount("flip"), uniqueAccount("flop")
	ta := credentials.Token{AccessToken: identity.Secret("tok-" + a), AccountID: a, UserID: "u"}
	tb := credentials.Token{AccessToken: identity.Secret("tok-" + b), AccountID: b, UserID: "u"}
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{ta.AccessToken.Reveal(), tb.AccessToken.Reveal()}})
	src := newLoginSource(ta)
	rt := loginTransport(t, srv, newHTTPBase(t), src, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for i := range 100 {
		want := a
		if i%2 == 1 {
			src.set(tb)
			want = b
		} else {
			src.set(ta)
		}
		echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "flip-thread")
		if echo.Mode != identitytest.ModeAssertion || echo.AccountID != want {
			t.Fatalf("request %d: mode %q account %q, want an assertion for %q", i, echo.Mode, echo.AccountID, want)
		}
	}
	if st := srv.Stats(); st.ThreadTaskRegistrations != 2 || st.AgentRegistrations != 2 {
		t.Fatalf("%d task and %d agent registrations for 100 alternating requests; want 2 and 2",
			st.ThreadTaskRegistrations, st.AgentRegistrations)
	}
}

// Headers the transport owns are removed in every spelling: a caller's
// lower-case authorization, account and FedRAMP headers never reach the
// server beside the transport's own.
func TestBindingOwnedHeadersInAnyCase(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	acct := uniqueAccount("case")
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, newRuntime(t, srv, acct, false))}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req := newRequest(t, ctx, srv.URL()+"/v1/responses")
	req.Header["authorization"] = []string{"Bearer sk-caller-secret"}
	req.Header["x-openai-fedramp"] = []string{"true"}
	req.Header["chatgpt-account-id"] = []string{"acct-evil"}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := onlySeen(t, srv).Header
	if v := h.Values("Authorization"); len(v) != 1 || !strings.HasPrefix(v[0], "AgentAssertion ") {
		t.Fatalf("Authorization %q, want only the transport's assertion", headersRedacted(v))
	}
	if v := h.Values("X-Openai-Fedramp"); len(v) != 0 {
		t.Fatalf("X-OpenAI-Fedramp %q reached the server for a non-FedRAMP identity", v)
	}
	if v := h.Values("Chatgpt-Account-Id"); len(v) != 1 || v[0] != acct {
		t.Fatalf("ChatGPT-Account-ID %q, want only %q", v, acct)
	}
	//lint:ignore SA1008 the caller set this non-canonical key on purpose; it must be left as it was
	if req.Header["authorization"][0] != "Bearer sk-caller-secret" {
		t.Fatal("the caller's request was modified")
	}
}

func headersRedacted(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		scheme, _, _ := strings.Cut(s, " ")
		out[i] = scheme + " …"
	}
	return out
}

// A resource that always answers 401 does not turn every request into a
// task registration: after a re-registered task is rejected at once, the
// key is not re-registered again within the backoff.
func TestBindingRepeated401IsBounded(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, newRuntime(t, srv, uniqueAccount("401"), false))}).rt
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusUnauthorized})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for range 100 {
		status, _, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "always-401")
		if err != nil || status != http.StatusUnauthorized {
			t.Fatalf("status %d, err %v; want the 401", status, err)
		}
	}
	if n := srv.Stats().RegistrationsByExternalRef["always-401"]; n > 2 {
		t.Fatalf("%d task registrations for 100 requests to an always-401 resource, want at most 2", n)
	}
}

// A task id above identity.MaxTaskIDLen is a registration error, never
// cached or sent.
func TestBindingHugeTaskIDRejected(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, newRuntime(t, srv, uniqueAccount("huge"), false))}).rt
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Body: []byte(`{"task_id":"` + strings.Repeat("t", 512<<10) + `"}`), Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, _, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "huge-thread")
	if !errors.Is(err, transport.ErrRegistration) || !errors.Is(err, identity.ErrMalformedResponse) {
		t.Fatalf("err %v, want an ErrRegistration for a malformed response", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d resource requests sent", n)
	}
}

// New validates the AuthAPI base completely: a path is fine; a query, a
// fragment or userinfo is rejected at construction.
func TestBindingAuthAPIBaseValidated(t *testing.T) {
	for _, tt := range []struct {
		base string
		ok   bool
	}{
		{"http://127.0.0.1:1/api/accounts", true},
		{"https://auth.example.com/api/accounts/", true},
		{"http://127.0.0.1:1/api#frag", false},
		{"http://127.0.0.1:1/api#", false},
		{"http://127.0.0.1:1/api?x=1", false},
		{"http://127.0.0.1:1/api?", false},
		{"http://user:pass@127.0.0.1:1/api", false},
		{"http://127.0.0.1:99999/api", false},
	} {
		_, err := tryEnv(t, envOptions{production: true, plain: true, noCredential: true, options: func(o *transport.Options) {
			o.Tuning.AuthAPIBaseURL = tt.base
		}})
		if (err == nil) != tt.ok {
			t.Errorf("AuthAPIBaseURL %q: err %v, want ok=%v", tt.base, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("error shows userinfo: %v", err)
		}
	}
}

// Externally managed tokens (auth_mode chatgptAuthTokens) are never
// provisioned, as in Codex: with the flag on they stay Bearer and no agent
// is registered.
func TestBindingExternallyManagedTokensNeverProvisioned(t *testing.T) {
	acct := uniqueAccount("external")
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-" + acct}})
	// Only auth.json says a login is externally managed: the transport
	// detects it from a Codex home.
	home := t.TempDir()
	writeAuthFile(t, filepath.Join(home, credentials.AuthFileName), func(a *credentials.AuthFile) {
		a.AuthMode = credentials.AuthModeChatGPTAuthTokens
		a.Tokens = &credentials.Tokens{AccessToken: "tok-" + acct, AccountID: acct}
	})
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, flag: featureflag.New(true), defaultStore: true,
		options: func(o *transport.Options) { o.Credential, o.CodexHome = transport.Credential{}, home }}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, thread := range []string{"", "ext-thread"} {
		if echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", thread); echo.Mode != identitytest.ModeBearer {
			t.Fatalf("thread %q: mode %q, want Bearer", thread, echo.Mode)
		}
	}
	if n := srv.Stats().AgentRegistrations; n != 0 {
		t.Fatalf("%d agent registrations for externally managed tokens, want 0", n)
	}
}

// Two ChatGPT logins without an account id, in one process and with the
// default store, get two identities: nothing tells them apart in a store,
// so neither may reuse the other's.
func TestAccountlessLoginsDoNotShareIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-a", "tok-b"}})
	runtimes := map[string]bool{}
	for _, tok := range []string{"tok-a", "tok-b"} {
		rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.BearerToken(tok, "", false),
			flag: featureflag.New(true), defaultStore: true}).rt // the process-wide default store
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
func TestAccountSwitchReprovisions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-1", "tok-1b", "tok-2"}})
	acct1, acct2 := uniqueAccount("sw1"), uniqueAccount("sw2")
	src := &switchingSource{}
	src.set(credentials.Token{AccessToken: "tok-1", AccountID: acct1})
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.ChatGPT(src), flag: featureflag.New(true)}).rt
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
