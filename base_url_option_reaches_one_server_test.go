package agentauth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// With Options.BaseURL as the only pointer at the reference server (no
// ChatGPTBaseURL, no AllowInsecureHTTP, no CODEX_REFRESH_TOKEN_URL_OVERRIDE),
// an expired ChatGPT login is refreshed there, an agent identity is
// provisioned there, and a thread request and a background request are
// signed on tasks registered there: nothing is sent elsewhere and no
// request meets a 401.
func TestBaseURLAloneReachesTheTestServer(t *testing.T) {
	// Overrides that point elsewhere must not win over BaseURL.
	elsewhere := env{
		"CODEX_REFRESH_TOKEN_URL_OVERRIDE":   "https://token.invalid/oauth/token",
		"CODEX_AUTHAPI_BASE_URL":             "https://authapi.invalid",
		"CODEX_AGENT_IDENTITY_JWKS_BASE_URL": "https://jwks.invalid",
	}
	for name, getenv := range map[string]func(string) string{"empty environment": env{}.get, "overrides elsewhere": elsewhere.get} {
		t.Run(name, func(t *testing.T) {
			var offset atomic.Int64 // the server's clock runs 2 h late while the login is issued
			offset.Store(int64(-2 * time.Hour))
			srv := newServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
			home, _ := chatGPTHome(t, srv) // its access token has expired by the real clock
			offset.Store(0)

			base := &http.Transport{}
			defer base.CloseIdleConnections()
			on := true
			rt, err := agentauth.NewTransport(base, agentauth.Options{
				CodexHome:        home,
				Getenv:           getenv,
				UseAgentIdentity: &on,
				BaseURL:          srv.URL(),
			})
			if err != nil {
				t.Fatal(err)
			}
			thread := transport.WithThread(context.Background(), "thread-base-url")
			if e := echoCtx(t, thread, rt, srv.URL()+"/v1/responses"); e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != "thread-base-url" || e.AccountID != "acct-one" {
				t.Errorf("thread request: %+v", e)
			}
			if e := echoCtx(t, context.Background(), rt, srv.URL()+"/v1/responses"); e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != "" || e.TaskID == "" {
				t.Errorf("background request: %+v", e)
			}
			st := srv.Stats()
			if st.TokenRefreshes != 1 || st.AgentRegistrations != 1 {
				t.Errorf("server: %d token refreshes, %d agent registrations; want 1, 1", st.TokenRefreshes, st.AgentRegistrations)
			}
			if st.ThreadTaskRegistrations != 1 || st.ProcessTaskRegistrations != 1 || st.Rejections != 0 {
				t.Errorf("server: %d thread and %d process registrations, %d rejections (%v); want 1, 1, 0",
					st.ThreadTaskRegistrations, st.ProcessTaskRegistrations, st.Rejections, st.RejectionsByReason)
			}
		})
	}
}

// echoCtx is echo with the caller's context.
func echoCtx(t *testing.T, ctx context.Context, rt http.RoundTripper, url string) identitytest.Echo {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return echo(t, roundTripperWithContext{rt, ctx}, url)
}

// roundTripperWithContext sends every request with ctx.
type roundTripperWithContext struct {
	rt  http.RoundTripper
	ctx context.Context
}

func (r roundTripperWithContext) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.rt.RoundTrip(req.WithContext(r.ctx))
}

// BaseURL derives the ChatGPT and AuthAPI bases; plain http is let in only
// for a loopback host.
func TestBaseURLDerivesTheBases(t *testing.T) {
	key := env{"CODEX_API_KEY": "sk-base-url"}
	for _, tc := range []struct {
		base, want string
		insecure   bool
	}{
		{"https://chatgpt.example/backend-api/", "https://chatgpt.example/backend-api", false},
		{"http://127.0.0.1:8787", "http://127.0.0.1:8787", true},
		{" http://localhost:9/backend-api ", "http://localhost:9/backend-api", true},
	} {
		setup, err := agentauth.Load(context.Background(), agentauth.Options{CodexHome: t.TempDir(), Getenv: key.get, BaseURL: tc.base})
		if err != nil {
			t.Fatalf("%q: %v", tc.base, err)
		}
		cfg := setup.Config()
		if cfg.ChatGPTBaseURL != tc.want || cfg.AuthAPIBaseURL != tc.want || cfg.AllowInsecureHTTP != tc.insecure {
			t.Errorf("%q: ChatGPT %q AuthAPI %q insecure %v; want %q, %v", tc.base, cfg.ChatGPTBaseURL, cfg.AuthAPIBaseURL, cfg.AllowInsecureHTTP, tc.want, tc.insecure)
		}
		if _, err := setup.Transport(nil); err != nil {
			t.Errorf("%q: transport: %v", tc.base, err)
		}
	}
}

func TestBaseURLRejectsBadInput(t *testing.T) {
	key := env{"CODEX_API_KEY": "sk-base-url"}
	for _, tc := range []struct {
		base string
		cfg  transport.Config
	}{
		{base: "http://chatgpt.example"},
		{base: "ftp://127.0.0.1"},
		{base: "127.0.0.1:8787"},
		{base: "https://user:hunter2@chatgpt.example"},
		{base: "https://chatgpt.example/?token=hunter2"},
		{base: "https://chatgpt.example/#hunter2"},
		{base: "http://127.0.0.1:1", cfg: transport.Config{ChatGPTBaseURL: "http://127.0.0.1:2"}},
		{base: "http://127.0.0.1:1", cfg: transport.Config{AuthAPIBaseURL: "http://127.0.0.1:2"}},
	} {
		_, err := agentauth.NewTransport(nil, agentauth.Options{CodexHome: t.TempDir(), Getenv: key.get, BaseURL: tc.base, Config: tc.cfg})
		if !errors.Is(err, agentauth.ErrInvalidBaseURL) {
			t.Errorf("%q: err = %v, want ErrInvalidBaseURL", tc.base, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error quotes the URL's secret: %v", tc.base, err)
		}
	}
}
