package agentauth_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

const patSecret = "at-test-personal-access-token"

func patServer(t *testing.T) *identitytest.Server {
	return newServer(t, identitytest.Options{PersonalAccessTokens: map[string]identitytest.Login{
		patSecret: {UserID: "user-pat", AccountID: "acct-pat", PlanType: "enterprise", FedRAMP: true},
	}})
}

// lastRequest returns the Authorization and ChatGPT-Account-ID the server
// saw on its last protected-resource request.
func lastRequest(t *testing.T, srv *identitytest.Server) (authz, account string) {
	t.Helper()
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatal("the server saw no request")
	}
	h := reqs[len(reqs)-1].Header
	return h.Get("Authorization"), h.Get("ChatGPT-Account-ID")
}

// checkPATTransport sends two requests through the transport of s and
// checks they reach srv as Bearer <PAT> with the hydrated account's
// routing headers, that the PAT was looked up once, and that nothing was
// provisioned even with the flag on.
func checkPATTransport(t *testing.T, srv *identitytest.Server, s *agentauth.Setup, source string) {
	t.Helper()
	c := s.Credentials
	if c.Kind != credentials.KindChatGPT || !c.PersonalAccessToken || c.Source != source || c.ChatGPT == nil ||
		c.ChatGPT.AccountID != "acct-pat" || c.ChatGPT.UserID != "user-pat" || !c.ChatGPT.FedRAMP || !c.ChatGPT.ExternallyManaged {
		t.Fatalf("Setup.Credentials = %v", c)
	}
	if s.TokenSource != nil || s.RefreshCoordinator != nil || s.IdentityStore != nil {
		t.Errorf("a personal access token got a token source %v, coordinator %v or identity store %v", s.TokenSource, s.RefreshCoordinator, s.IdentityStore)
	}
	rt, err := s.Transport(nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e := echo(t, rt, srv.URL()+"/v1/models")
		if e.Mode != identitytest.ModeBearer || e.AccountID != "acct-pat" || !e.FedRAMP {
			t.Errorf("echo %+v, want Bearer for acct-pat, FedRAMP", e)
		}
		if authz, acct := lastRequest(t, srv); authz != "Bearer "+patSecret || acct != "acct-pat" {
			t.Errorf("server saw Authorization %q ChatGPT-Account-ID %q", authz, acct)
		}
	}
	if n := srv.WhoamiRequests(); n != 1 {
		t.Errorf("whoami answered %d times, want 1 (at load)", n)
	}
	if st := srv.Stats(); st.AgentRegistrations != 0 || st.TaskRegistrations != 0 {
		t.Errorf("%d agent and %d task registrations; a personal access token is never provisioned", st.AgentRegistrations, st.TaskRegistrations)
	}
}

func TestLoadHydratesPersonalAccessTokenFromAuthJSON(t *testing.T) {
	srv := patServer(t)
	home := t.TempDir()
	authJSON := `{"auth_mode":"personalAccessToken","personal_access_token":"` + patSecret + `","future_field":{"keep":1}}`
	path := filepath.Join(home, credentials.AuthFileName)
	if err := os.WriteFile(path, []byte(authJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	on := true
	cfg := loopback(srv)
	cfg.AuthAPIBaseURL = srv.URL() + "/api/accounts"
	s, err := agentauth.Load(context.Background(), agentauth.Options{
		CodexHome: home, Getenv: env{}.get, UseAgentIdentity: &on, Config: cfg,
		HTTPClient: &http.Client{Transport: srvTransport(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkPATTransport(t, srv, s, path)
	if b, err := os.ReadFile(path); err != nil || string(b) != authJSON {
		t.Errorf("auth.json changed: %s (%v)", b, err)
	}
}

func TestLoadHydratesPersonalAccessTokenFromEnv(t *testing.T) {
	srv := patServer(t)
	cfg := loopback(srv)
	cfg.AuthAPIBaseURL = "" // from the environment, trimmed, like Codex
	s, err := agentauth.Load(context.Background(), agentauth.Options{
		CodexHome: t.TempDir(),
		Getenv: env{
			"CODEX_ACCESS_TOKEN":           " " + patSecret + " ",
			"CODEX_AUTHAPI_BASE_URL":       " " + srv.URL() + "/api/accounts/ ",
			"AGENTAUTH_USE_AGENT_IDENTITY": "1",
		}.get,
		Config:     cfg,
		HTTPClient: &http.Client{Transport: srvTransport(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkPATTransport(t, srv, s, credentials.SourceEnvCodexAccessToken)
}

// A token the AuthAPI rejects fails Load with the typed error, and the
// message never holds the token.
func TestLoadRejectsUnknownPersonalAccessToken(t *testing.T) {
	srv := patServer(t)
	const unknown = "at-not-known-here"
	_, err := agentauth.NewTransport(srvTransport(t), agentauth.Options{
		CodexHome: t.TempDir(),
		Getenv:    env{"CODEX_ACCESS_TOKEN": unknown}.get,
		Config:    loopback(srv),
	})
	var pe *credentials.PersonalAccessTokenError
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized || pe.Temporary() {
		t.Fatalf("got %v, want a permanent 401 *credentials.PersonalAccessTokenError", err)
	}
	if msg := err.Error(); strings.Contains(msg, unknown) || !strings.Contains(msg, credentials.SourceEnvCodexAccessToken) {
		t.Errorf("message %q: want the source and not the token", msg)
	}
}

func srvTransport(t *testing.T) *http.Transport {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// A 401 to a request sent with a personal access token is returned as it
// is: the token cannot be refreshed, and Codex does not recover a 401 for
// one either. The request is sent once and whoami is not asked again.
func TestPersonalAccessToken401IsReturnedWithoutRecovery(t *testing.T) {
	srv := patServer(t)
	s, err := agentauth.Load(context.Background(), agentauth.Options{
		CodexHome: t.TempDir(), Getenv: env{"CODEX_ACCESS_TOKEN": patSecret}.get, Config: loopback(srv),
		HTTPClient: &http.Client{Transport: srvTransport(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var sent int
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent++
		if got := r.Header.Get("Authorization"); got != "Bearer "+patSecret {
			t.Errorf("Authorization %q", got)
		}
		return &http.Response{StatusCode: http.StatusUnauthorized, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	rt, err := s.Transport(base)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1/models", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || sent != 1 || srv.WhoamiRequests() != 1 {
		t.Errorf("status %d after %d sends and %d whoami requests; want 401, 1, 1", resp.StatusCode, sent, srv.WhoamiRequests())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
