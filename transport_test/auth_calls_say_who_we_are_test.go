// Agent and task registration name agentauth and its version in
// User-Agent, and carry Codex's originator header when one is configured
// (Tuning.Originator, else CODEX_INTERNAL_ORIGINATOR_OVERRIDE); by default
// no originator is sent.
package transport_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

type pathHeaders struct {
	mu   sync.Mutex
	seen map[string][]http.Header
	next http.RoundTripper
}

func (p *pathHeaders) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	if p.seen == nil {
		p.seen = map[string][]http.Header{}
	}
	kind := "resource"
	switch {
	case strings.HasSuffix(req.URL.Path, "/v1/agent/register"):
		kind = "agent"
	case strings.HasSuffix(req.URL.Path, "/task/register"):
		kind = "task"
	}
	p.seen[kind] = append(p.seen[kind], req.Header.Clone())
	p.mu.Unlock()
	return p.next.RoundTrip(req)
}

func TestRegistrationsSayWhoWeAre(t *testing.T) {
	for _, tc := range []struct {
		name, configured, env, want string
	}{
		{"default: no originator", "", "", ""},
		{"configured", "codex_exec", "", "codex_exec"},
		{"the environment overrides, as in Codex", "codex_exec", "codex_cli_rs", "codex_cli_rs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := unique("ua-token")
			srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
			account := uniqueAccount("ua")
			rec := &pathHeaders{next: newHTTPBase(t)}
			o := optIn(srv, rec, token, account, credentials.NewMemoryStore())
			o.options = func(o *transport.Options) {
				o.Tuning.Originator = tc.configured
				o.Getenv = func(k string) string {
					if k == "CODEX_INTERNAL_ORIGINATOR_OVERRIDE" {
						return tc.env
					}
					return ""
				}
			}
			rt := newEnv(t, o).rt
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "ua-thread")
			mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "")
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, kind := range []string{"agent", "task"} {
				if len(rec.seen[kind]) == 0 {
					t.Fatalf("no %s registration seen", kind)
				}
				for _, h := range rec.seen[kind] {
					if ua := h.Get("User-Agent"); ua != identity.DefaultUserAgent || !strings.HasPrefix(ua, "agentauth/") {
						t.Errorf("%s registration User-Agent %q", kind, ua)
					}
					if got := h.Get("originator"); got != tc.want || (tc.want == "" && h.Values("originator") != nil) {
						t.Errorf("%s registration originator %q, want %q", kind, got, tc.want)
					}
				}
			}
		})
	}
}
