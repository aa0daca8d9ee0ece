package transport_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/headers"
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
	elsewhere := envVars{
		"CODEX_REFRESH_TOKEN_URL_OVERRIDE":   "https://token.invalid/oauth/token",
		"CODEX_AUTHAPI_BASE_URL":             "https://authapi.invalid",
		"CODEX_AGENT_IDENTITY_JWKS_BASE_URL": "https://jwks.invalid",
	}
	for name, getenv := range map[string]func(string) string{"empty environment": envVars{}.get, "overrides elsewhere": elsewhere.get} {
		t.Run(name, func(t *testing.T) {
			var offset atomic.Int64 // the server's clock runs 2 h late while the login is issued
			offset.Store(int64(-2 * time.Hour))
			srv := newIdentityServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
			home, _ := chatGPTHome(t, srv) // its access token has expired by the real clock
			offset.Store(0)

			o := fromHome(srv, newHTTPBase(t), home, getenv) // BaseURL: srv.URL(), nothing else
			o.flag = featureflag.New(true)
			rt := newEnv(t, o).rt
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

// echoCtx is getEcho with the caller's context.
func echoCtx(t *testing.T, ctx context.Context, rt http.RoundTripper, url string) identitytest.Echo {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return getEcho(t, roundTripperWithContext{rt, ctx}, url)
}

// roundTripperWithContext sends every request with ctx.
type roundTripperWithContext struct {
	rt  http.RoundTripper
	ctx context.Context
}

func (r roundTripperWithContext) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.rt.RoundTrip(req.WithContext(r.ctx))
}

// urlLog records the URL of every request it passes on.
type urlLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	urls []string
}

func (l *urlLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.urls = append(l.urls, req.URL.String())
	l.mu.Unlock()
	return l.next.RoundTrip(req)
}

// BaseURL derives the ChatGPT and AuthAPI bases; plain http is let in only
// for a loopback host. The bases show in what is sent: a request under
// the derived ChatGPT base is first-party (signed), and its task is
// registered under the derived AuthAPI base.
func TestBaseURLDerivesTheBases(t *testing.T) {
	for _, tc := range []struct {
		base, want string
	}{
		{"https://chatgpt.example/backend-api/", "https://chatgpt.example/backend-api"},
		{"http://127.0.0.1:8787", "http://127.0.0.1:8787"},
		{" http://localhost:9/backend-api ", "http://localhost:9/backend-api"},
	} {
		log := &urlLog{next: newStubBase(newTaskCounter())}
		e, err := tryEnv(t, envOptions{production: true, base: log, plain: true, credential: agentCred(t, agentIdentityRecord(t)),
			options: func(o *transport.Options) { o.BaseURL = tc.base }})
		if err != nil {
			t.Fatalf("%q: %v", tc.base, err)
		}
		r := post(context.Background(), e.rt, tc.want+"/v1/responses", "")
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("%q: status %d, err %v", tc.base, r.status, r.err)
		}
		stub := log.next.(*stubBase)
		if got := stub.last().Header.Get(headers.Authorization); !strings.HasPrefix(got, headers.SchemeAgentAssertion+" ") {
			t.Errorf("%q: a request under the derived ChatGPT base was not signed", tc.base)
		}
		log.mu.Lock()
		urls := append([]string(nil), log.urls...)
		log.mu.Unlock()
		if len(urls) != 2 || !strings.HasPrefix(urls[0], tc.want+"/") || !strings.HasSuffix(urls[0], "/task/register") {
			t.Errorf("%q: sent %q, want a task registration under %q, then the request", tc.base, urls, tc.want)
		}
	}
}

func TestBaseURLRejectsBadInput(t *testing.T) {
	key := envVars{"CODEX_API_KEY": "sk-base-url"}
	for _, tc := range []struct {
		base string
		tu   transport.Tuning
	}{
		{base: "http://chatgpt.example"},
		{base: "ftp://127.0.0.1"},
		{base: "127.0.0.1:8787"},
		{base: "https://user:hunter2@chatgpt.example"},
		{base: "https://chatgpt.example/?token=hunter2"},
		{base: "https://chatgpt.example/#hunter2"},
		{base: "http://127.0.0.1:1", tu: transport.Tuning{ChatGPTBaseURL: "http://127.0.0.1:2"}},
		{base: "http://127.0.0.1:1", tu: transport.Tuning{AuthAPIBaseURL: "http://127.0.0.1:2"}},
	} {
		_, err := tryEnv(t, envOptions{production: true, plain: true, getenv: key.get, detect: true,
			options: func(o *transport.Options) { o.BaseURL, o.Tuning = tc.base, tc.tu }})
		if !errors.Is(err, transport.ErrInvalidOptions) {
			t.Errorf("%q: err = %v, want ErrInvalidOptions", tc.base, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error quotes the URL's secret: %v", tc.base, err)
		}
	}
}
