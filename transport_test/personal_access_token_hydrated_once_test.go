package transport_test

// A personal access token (auth.json or CODEX_ACCESS_TOKEN) is looked up
// once for its account and sent as Bearer with that account's routing,
// never provisioned and never recovered after a 401; an unknown one fails
// New with a typed error that never holds the token.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

const patSecret = "at-test-personal-access-token"

func patServer(t *testing.T) *identitytest.Server {
	return newIdentityServer(t, identitytest.Options{PersonalAccessTokens: map[string]identitytest.Login{
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

// checkPATTransport detects the credential of home and getenv with the
// flag on and the bases of tu, checks it is a personal access token from
// source, then sends two requests through a transport on it and checks
// they reach srv as Bearer <PAT> with the hydrated account's routing
// headers, that the PAT was looked up once (at detection), and that
// nothing was provisioned.
func checkPATTransport(t *testing.T, srv *identitytest.Server, home string, getenv func(string) string, tu transport.Tuning, source string) {
	t.Helper()
	base := newHTTPBase(t)
	cred, err := transport.Detect(context.Background(), transport.Options{
		CodexHome: home, Getenv: getenv, Tuning: tu, HTTPClient: &http.Client{Transport: base},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "personal access token from " + source; fmt.Sprint(cred) != want {
		t.Fatalf("Detect = %q, want %q", cred, want)
	}
	before := srv.WhoamiRequests()
	o := fromHome(srv, base, home, getenv)
	o.detect, o.credential, o.flag = false, cred, featureflag.New(true)
	o.options = func(o *transport.Options) { o.BaseURL, o.Tuning = "", tu }
	rt := newEnv(t, o).rt
	for range 2 {
		e := getEcho(t, rt, srv.URL()+"/v1/models")
		if e.Mode != identitytest.ModeBearer || e.AccountID != "acct-pat" || !e.FedRAMP {
			t.Errorf("echo %+v, want Bearer for acct-pat, FedRAMP", e)
		}
		if authz, acct := lastRequest(t, srv); authz != "Bearer "+patSecret || acct != "acct-pat" {
			t.Errorf("server saw Authorization %q ChatGPT-Account-ID %q", authz, acct)
		}
	}
	if n := srv.WhoamiRequests(); n != 1 || before != 1 {
		t.Errorf("whoami answered %d times, %d of them at detection; want 1, at detection", n, before)
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
	tu := transport.Tuning{ChatGPTBaseURL: srv.URL(), AuthAPIBaseURL: srv.URL() + "/api/accounts", AllowInsecureHTTP: true}
	checkPATTransport(t, srv, home, envVars{}.get, tu, path)
	if b, err := os.ReadFile(path); err != nil || string(b) != authJSON {
		t.Errorf("auth.json changed: %s (%v)", b, err)
	}
}

func TestLoadHydratesPersonalAccessTokenFromEnv(t *testing.T) {
	srv := patServer(t)
	getenv := envVars{
		"CODEX_ACCESS_TOKEN":           " " + patSecret + " ",
		"CODEX_AUTHAPI_BASE_URL":       " " + srv.URL() + "/api/accounts/ ",
		"AGENTAUTH_USE_AGENT_IDENTITY": "1",
	}.get
	// The AuthAPI from the environment, trimmed, like Codex.
	tu := transport.Tuning{ChatGPTBaseURL: srv.URL(), AllowInsecureHTTP: true}
	checkPATTransport(t, srv, t.TempDir(), getenv, tu, credentials.SourceEnvCodexAccessToken)
}

// A token the AuthAPI rejects fails New with the typed error, and the
// message never holds the token.
func TestLoadRejectsUnknownPersonalAccessToken(t *testing.T) {
	srv := patServer(t)
	const unknown = "at-not-known-here"
	_, err := tryEnv(t, fromHome(srv, newHTTPBase(t), t.TempDir(), envVars{"CODEX_ACCESS_TOKEN": unknown}.get))
	var pe *credentials.PersonalAccessTokenError
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized || pe.Temporary() {
		t.Fatalf("got %v, want a permanent 401 *credentials.PersonalAccessTokenError", err)
	}
	if msg := err.Error(); strings.Contains(msg, unknown) || !strings.Contains(msg, credentials.SourceEnvCodexAccessToken) {
		t.Errorf("message %q: want the source and not the token", msg)
	}
}

// A 401 to a request sent with a personal access token is returned as it
// is: the token cannot be refreshed, and Codex does not recover a 401 for
// one either. The request is sent once and whoami is not asked again.
func TestPersonalAccessToken401IsReturnedWithoutRecovery(t *testing.T) {
	srv := patServer(t)
	var sent int
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent++
		if got := r.Header.Get("Authorization"); got != "Bearer "+patSecret {
			t.Errorf("Authorization %q", got)
		}
		return &http.Response{StatusCode: http.StatusUnauthorized, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	o := fromHome(srv, base, t.TempDir(), envVars{"CODEX_ACCESS_TOKEN": patSecret}.get)
	o.options = func(o *transport.Options) { o.HTTPClient = &http.Client{Transport: newHTTPBase(t)} } // whoami
	rt := newEnv(t, o).rt
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
