package agentauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

type env map[string]string

func (e env) get(k string) string { return e[k] }

func newServer(t *testing.T, opts identitytest.Options) *identitytest.Server {
	t.Helper()
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func loopback(srv *identitytest.Server) transport.Config {
	return transport.Config{ChatGPTBaseURL: srv.URL(), AuthAPIBaseURL: srv.URL(), AllowInsecureHTTP: true}
}

func echo(t *testing.T, rt http.RoundTripper, url string) identitytest.Echo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var e identitytest.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func chatGPTHome(t *testing.T, srv *identitytest.Server) (string, *identitytest.Login) {
	t.Helper()
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-one", UserID: "user-one"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, time.Now()); err != nil {
		t.Fatal(err)
	}
	return home, login
}

// A ChatGPT login with the flag from the environment: provisioned once,
// signed with AgentAssertion, and the identity lands in auth.json's
// agent_identity in Codex's record form.
func TestNewTransportChatGPTFlagFromEnv(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	setup, err := agentauth.Load(context.Background(), agentauth.Options{
		CodexHome: home, Getenv: env{"AGENTAUTH_USE_AGENT_IDENTITY": "true", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get,
		HTTPClient: &http.Client{Transport: base}, Config: loopback(srv),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if _, ok := setup.TokenSource.(*credentials.RefreshingTokenSource); !ok || !setup.Flag.Enabled() {
		t.Fatalf("setup: source %T flag %v", setup.TokenSource, setup.Flag)
	}
	rt, err := setup.Transport(base)
	if err != nil {
		t.Fatal(err)
	}
	e := echo(t, rt, srv.URL()+"/v1/echo")
	if e.Mode != identitytest.ModeAssertion || e.AccountID != "acct-one" {
		t.Fatalf("echo = %+v", e)
	}
	af, err := credentials.NewFileStore(filepath.Join(home, credentials.AuthFileName)).Load()
	if err != nil || af.AgentIdentityRecord == nil || af.AgentIdentityRecord.AgentRuntimeID != e.AgentRuntimeID {
		t.Fatalf("auth.json agent_identity = %v, %v", af, err)
	}
	if srv.Stats().AgentRegistrations != 1 {
		t.Errorf("agent registrations = %d", srv.Stats().AgentRegistrations)
	}
}

// An expired access token is refreshed once by the transport and the
// request succeeds; auth.json is updated.
func TestNewTransportRefreshesExpiredLogin(t *testing.T) {
	var offset atomic.Int64 // the server's clock runs 2 h late while the login is issued
	offset.Store(int64(-2 * time.Hour))
	srv := newServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	home, login := chatGPTHome(t, srv)
	offset.Store(0)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	off := false
	setup, err := agentauth.Load(context.Background(), agentauth.Options{
		CodexHome: home, Getenv: env{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get, UseAgentIdentity: &off,
		HTTPClient: &http.Client{Transport: base}, Config: loopback(srv),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	rt, _ := setup.Transport(base)
	if e := echo(t, rt, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeBearer {
		t.Fatalf("echo = %+v", e)
	}
	if srv.Stats().TokenRefreshes != 1 {
		t.Fatalf("token refreshes = %d", srv.Stats().TokenRefreshes)
	}
	data, _ := os.ReadFile(filepath.Join(home, credentials.AuthFileName))
	if strings.Contains(string(data), login.RefreshToken) {
		t.Error("auth.json still holds the used refresh token")
	}
}

func TestNewTransportRejectsInvalidFlag(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	_, err := agentauth.NewTransport(nil, agentauth.Options{CodexHome: home, Getenv: env{"AGENTAUTH_USE_AGENT_IDENTITY": "maybe"}.get, Config: loopback(srv)})
	if err == nil || !strings.Contains(err.Error(), "AGENTAUTH_USE_AGENT_IDENTITY") {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[features]\nuse_agent_identity = \"yes please\"\n"), 0o600)
	if _, err := agentauth.NewTransport(nil, agentauth.Options{CodexHome: home, Getenv: env{}.get, Config: loopback(srv)}); err == nil {
		t.Fatal("an invalid config.toml value was accepted")
	}
}

// An Agent Identity JWT (here in CODEX_ACCESS_TOKEN) is verified against
// the JWKS: one signed by the server's issuer works, one signed by another
// key under the same kid is rejected.
func TestNewTransportJWT(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pk := key.MarshalPrivateKey()
	rec := identity.Record{AgentRuntimeID: "rt-jwt", AgentPrivateKey: identity.Secret(pk), AccountID: "acct-jwt", ChatGPTUserID: "user-jwt", PlanType: "pro"}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	iss, err := srv.Issuer()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := iss.Mint(rec, identitytest.MintOptions{})
	other, _ := identitytest.NewJWTIssuer()
	forged, _ := other.Mint(rec, identitytest.MintOptions{KID: iss.KID()})
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	for _, tc := range []struct {
		name string
		jwt  string
		ok   bool
	}{{"verified", good, true}, {"forged", forged, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := agentauth.NewTransport(base, agentauth.Options{
				CodexHome: t.TempDir(), Getenv: env{"CODEX_ACCESS_TOKEN": tc.jwt}.get, Config: loopback(srv),
			})
			if !tc.ok {
				if err == nil {
					t.Fatal("a JWT signed by another key was accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e := echo(t, rt, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeAssertion || e.AgentRuntimeID != "rt-jwt" {
				t.Fatalf("echo = %+v", e)
			}
		})
	}
}

func TestNewTransportExplainsMissingCredential(t *testing.T) {
	home := t.TempDir()
	_, err := agentauth.NewTransport(nil, agentauth.Options{CodexHome: home, Getenv: env{}.get})
	if !errors.Is(err, agentauth.ErrNoCredential) {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("cli_auth_credentials_store = \"keyring\"\n"), 0o600)
	_, err = agentauth.NewTransport(nil, agentauth.Options{CodexHome: home, Getenv: env{}.get})
	if !errors.Is(err, credentials.ErrKeyringStorage) {
		t.Fatalf("keyring storage: %v", err)
	}
}

// The JWKS that verifies an Agent Identity JWT is fetched from the URL the
// https-only rule checked, never from where a redirect points: a JWKS base
// that redirects (here to the genuine keys) fails the verification.
func TestNewTransportJWKSFetchFollowsNoRedirect(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-redir", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-redir", ChatGPTUserID: "user-redir", PlanType: "pro"}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	iss, err := srv.Issuer()
	if err != nil {
		t.Fatal(err)
	}
	good, err := iss.Mint(rec, identitytest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var redirected atomic.Int32
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		http.Redirect(w, r, identity.JWKSURL(srv.URL()), http.StatusFound)
	}))
	defer redirector.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	getenv := env{"CODEX_ACCESS_TOKEN": good}
	// The genuine base verifies it; a base that redirects to the same keys
	// does not.
	if _, err := agentauth.NewTransport(base, agentauth.Options{CodexHome: t.TempDir(), Getenv: getenv.get, Config: loopback(srv)}); err != nil {
		t.Fatalf("the genuine JWKS base: %v", err)
	}
	getenv[identity.EnvJWKSBase] = redirector.URL
	_, err = agentauth.NewTransport(base, agentauth.Options{CodexHome: t.TempDir(), Getenv: getenv.get, Config: loopback(srv)})
	if err == nil {
		t.Fatal("the JWKS was fetched through a redirect")
	}
	if redirected.Load() == 0 {
		t.Fatalf("the JWKS base was never asked (%v): the test proves nothing", err)
	}
}
