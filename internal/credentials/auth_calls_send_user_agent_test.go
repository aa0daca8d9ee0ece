package credentials

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/useragent"
)

// headerRecorder records the headers of every request it forwards.
type headerRecorder struct {
	mu   sync.Mutex
	seen []http.Header
	next http.RoundTripper
}

func (r *headerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Header.Clone())
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *headerRecorder) all() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.seen...)
}

// The refresh request names agentauth and its version, and carries the
// originator of CODEX_INTERNAL_ORIGINATOR_OVERRIDE (Go's default
// User-Agent before).
func TestRefreshSendsUserAgentAndOriginator(t *testing.T) {
	t.Setenv(useragent.EnvOriginatorOverride, "codex_cli_rs")
	e := newRefreshEnv(t, identitytest.Options{})
	rec := &headerRecorder{next: http.DefaultTransport}
	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: NewAuthFileCoordinator(e.home),
		TokenURL:    e.srv.TokenURL(),
		Getenv:      fakeEnv(nil),
		Now:         e.clock.Now,
		HTTPClient:  &http.Client{Transport: rec},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(testCtx(t), a); err != nil || s.TokenRequests() != 1 {
		t.Fatalf("Refresh = %v after %d requests", err, s.TokenRequests())
	}
	seen := rec.all()
	if len(seen) == 0 {
		t.Fatal("no request recorded")
	}
	for _, h := range seen {
		if h.Get("User-Agent") != useragent.Value() || h.Get("originator") != "codex_cli_rs" {
			t.Fatalf("refresh headers: User-Agent %q originator %q", h.Get("User-Agent"), h.Get("originator"))
		}
	}
}

// The personal access token lookup names agentauth too; without the
// override and without a configured originator it sends none.
func TestWhoamiSendsUserAgent(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.Write([]byte(`{"email":null,"chatgpt_user_id":"u","chatgpt_account_id":"a","chatgpt_plan_type":"pro","chatgpt_account_is_fedramp":false}`))
	}))
	defer srv.Close()
	if _, err := HydratePersonalAccessToken(testCtx(t), srv.Client(), srv.URL, "at-SECRET"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Get("User-Agent") != useragent.Value() || got.Values("originator") != nil {
		t.Fatalf("whoami headers: User-Agent %q originator %v", got.Get("User-Agent"), got.Values("originator"))
	}
	ctx := useragent.WithOriginator(testCtx(t), "codex_vscode")
	mu.Unlock()
	if _, err := HydratePersonalAccessToken(ctx, srv.Client(), srv.URL, "at-SECRET"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if got.Get("originator") != "codex_vscode" {
		t.Fatalf("configured originator not sent: %v", got.Values("originator"))
	}
}
