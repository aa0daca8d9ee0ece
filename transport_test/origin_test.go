package transport_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// TestRedirectToOtherOriginGetsNoCredential: a 302 from a first-party origin
// to another origin delivers no credential or routing header to the second
// one, and the redirect hop registers nothing.
func TestRedirectToOtherOriginGetsNoCredential(t *testing.T) {
	const token, apiKey = "redirect-access-token", "sk-redirect"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	other := newHeaderLog(t)

	var mu sync.Mutex
	var firstSeen []http.Header
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		firstSeen = append(firstSeen, r.Header.Clone())
		mu.Unlock()
		http.Redirect(w, r, other.URL()+"/landing", http.StatusFound)
	}))
	defer first.Close()
	base := newHTTPBase(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	type regs struct{ agent, thread, process int }
	cases := []struct {
		name    string
		creds   func() transport.Credential
		flagOn  bool
		thread  string
		scheme  string // of the first hop's Authorization
		routing bool
		regs    regs // all made by the first-party hop
	}{
		{name: "api-key", creds: func() transport.Credential { return transport.APIKey(apiKey) }, scheme: "Bearer"},
		{name: "chatgpt-bearer", creds: func() transport.Credential { return transport.BearerToken(token, uniqueAccount("redir"), true) },
			thread: "t-redirect", scheme: "Bearer", routing: true},
		{name: "chatgpt-assertion", creds: func() transport.Credential { return transport.BearerToken(token, uniqueAccount("redir"), false) },
			flagOn: true, thread: "t-redirect", scheme: "AgentAssertion", routing: true, regs: regs{agent: 1, thread: 1}},
		{name: "agent-thread", creds: func() transport.Credential { return agentCred(t, newRuntime(t, srv, uniqueAccount("redir"), true)) },
			thread: "t-redirect", scheme: "AgentAssertion", routing: true, regs: regs{thread: 1}},
		{name: "agent-process", creds: func() transport.Credential { return agentCred(t, newRuntime(t, srv, uniqueAccount("redir"), false)) },
			scheme: "AgentAssertion", routing: true, regs: regs{process: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetStats()
			other.reset()
			mu.Lock()
			firstSeen = nil
			mu.Unlock()
			creds := tc.creds()
			rt := newEnv(t, envOptions{srv: srv, production: true, base: base, plain: true, credential: creds,
				flag: featureflag.New(tc.flagOn), options: func(o *transport.Options) {
					o.Tuning = transport.Tuning{AuthAPIBaseURL: srv.URL(), AllowedOrigins: []string{first.URL, srv.URL()}, AllowInsecureHTTP: true}
				}}).rt
			client := &http.Client{Transport: rt}
			req, err := http.NewRequestWithContext(threadCtx(ctx, tc.thread), http.MethodGet, first.URL+"/start", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/landing" {
				t.Fatalf("status %d at %s, want 200 at /landing", resp.StatusCode, resp.Request.URL.Path)
			}

			mu.Lock()
			hops := append([]http.Header(nil), firstSeen...)
			mu.Unlock()
			if len(hops) != 1 {
				t.Fatalf("first-party origin got %d requests, want 1", len(hops))
			}
			if v := hops[0].Values(headers.Authorization); len(v) != 1 || !strings.HasPrefix(v[0], tc.scheme+" ") {
				t.Fatalf("first-party hop did not get one %s credential (%d values)", tc.scheme, len(v))
			}
			if got := hops[0].Get(headers.ChatGPTAccountID) != ""; got != tc.routing {
				t.Fatalf("first-party hop routing present = %v, want %v", got, tc.routing)
			}
			landed := other.headers()
			if len(landed) != 1 {
				t.Fatalf("other origin got %d requests, want 1", len(landed))
			}
			checkNoCredential(t, landed[0])

			st, ts := srv.Stats(), rt.Stats()
			got := regs{st.AgentRegistrations, st.ThreadTaskRegistrations, st.ProcessTaskRegistrations}
			if got != tc.regs {
				t.Fatalf("registrations %+v, want %+v (the first-party hop's only)", got, tc.regs)
			}
			if ts.Requests[resolver.ModePassThrough] != 1 {
				t.Fatalf("redirect hop was not passed through: %+v", ts.Requests)
			}
		})
	}
}

// TestPlainHTTPOriginsNeedOptIn: an http origin anywhere in the allow-list is
// refused by New unless AllowInsecureHTTP is set, and an https origin does
// not admit the same host over http.
func TestPlainHTTPOriginsNeedOptIn(t *testing.T) {
	creds := transport.APIKey("sk-insecure")
	build := func(t *testing.T, base http.RoundTripper, tu transport.Tuning) (*transport.Transport, error) {
		e, err := tryEnv(t, envOptions{production: true, base: base, plain: true, credential: creds, defaultStore: true,
			options: func(o *transport.Options) { o.Tuning = tu }})
		if err != nil {
			return nil, err
		}
		return e.rt, nil
	}
	cases := map[string]transport.Tuning{
		"chatgpt base":    {ChatGPTBaseURL: "http://127.0.0.1:8080/backend-api"},
		"allowed origins": {AllowedOrigins: []string{"https://chatgpt.com", "http://[::1]:9"}},
		"extra origins":   {ExtraOrigins: []string{"http://localhost:9"}},
	}
	for name, tu := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := build(t, newStubBase(nil), tu); err == nil || !strings.Contains(err.Error(), "AllowInsecureHTTP") {
				t.Fatalf("New accepted a plain-http origin (err %v)", err)
			}
			tu.AllowInsecureHTTP = true
			if _, err := build(t, newStubBase(nil), tu); err != nil {
				t.Fatalf("New with AllowInsecureHTTP: %v", err)
			}
		})
	}

	t.Run("scheme must match", func(t *testing.T) {
		plain := newHeaderLog(t)
		httpsOrigin := "https://" + strings.TrimPrefix(plain.URL(), "http://")
		rt, err := build(t, newHTTPBase(t), transport.Tuning{AllowedOrigins: []string{httpsOrigin}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		resp, err := rt.RoundTrip(newRequest(t, ctx, plain.URL()+"/v1/responses"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := plain.headers()
		if len(got) != 1 {
			t.Fatalf("got %d requests, want 1", len(got))
		}
		checkNoCredential(t, got[0])
	})

	t.Run("not an origin", func(t *testing.T) {
		_, err := build(t, http.DefaultTransport, transport.Tuning{AllowedOrigins: []string{"ftp://example.test"}})
		if err == nil {
			t.Fatal("New accepted an ftp origin")
		}
		var ae *transport.Error
		if errors.As(err, &ae) {
			t.Fatalf("config error is a request error: %v", err)
		}
	})
}
