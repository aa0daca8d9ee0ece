package transport_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// registrationRecorder is an Options.HTTPClient transport that keeps the
// headers of every agent registration it forwards.
type registrationRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []http.Header
}

func (r *registrationRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/v1/agent/register") {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Clone())
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// Agent registration carries exactly the headers current Codex sends:
// Authorization: Bearer with the login's token, a JSON content type,
// X-OpenAI-Fedramp: true for a FedRAMP account only, and the client's own
// User-Agent. No ChatGPT-Account-ID: the AuthAPI takes the account from
// the token (the reference server does too, for the token it was told
// belongs to the account).
func TestAgentRegistrationHeadersAsCodex(t *testing.T) {
	for _, fedRAMP := range []bool{false, true} {
		name := "commercial"
		if fedRAMP {
			name = "fedramp"
		}
		t.Run(name, func(t *testing.T) {
			acct := uniqueAccount("reghdr")
			token := "tok-" + acct
			srv := newIdentityServer(t, identitytest.Options{AccessTokenAccounts: map[string]string{token: acct}})
			base := newHTTPBase(t)
			rec := &registrationRecorder{next: base}
			rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.BearerToken(token, acct, fedRAMP),
				flag: featureflag.New(true), options: func(o *transport.Options) { o.HTTPClient = &http.Client{Transport: rec} }}).rt
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "thread-reghdr"); echo.Mode != identitytest.ModeAssertion {
				t.Fatalf("mode %q, want an assertion", echo.Mode)
			}

			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.seen) != 1 {
				t.Fatalf("%d agent registrations, want 1", len(rec.seen))
			}
			h := rec.seen[0]
			want := []string{"Authorization", "Content-Type", "User-Agent"}
			if fedRAMP {
				want = append(want, "X-Openai-Fedramp")
			}
			var got []string
			for k := range h {
				got = append(got, k)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("header names %q, want exactly %q", got, want)
			}
			if v := h.Values("Authorization"); len(v) != 1 || v[0] != "Bearer "+token {
				t.Errorf("Authorization is not exactly the login's Bearer token (%d values)", len(v))
			}
			if v := h.Values("Content-Type"); len(v) != 1 || v[0] != "application/json" {
				t.Errorf("Content-Type %q, want application/json", v)
			}
			if v, ok := h["X-Openai-Fedramp"]; ok && (!fedRAMP || len(v) != 1 || v[0] != "true") {
				t.Errorf("X-OpenAI-Fedramp %q for fedRAMP=%v", v, fedRAMP)
			}
			if v := h.Get("User-Agent"); v == "" {
				t.Error("no User-Agent")
			}
			if rts := srv.Runtimes(); len(rts) != 1 || rts[0].AccountID != acct || rts[0].FedRAMP != fedRAMP {
				t.Errorf("runtimes %+v: want one for %s (fedRAMP=%v)", rts, acct, fedRAMP)
			}
		})
	}
}
