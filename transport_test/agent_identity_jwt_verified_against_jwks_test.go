package transport_test

// An Agent Identity JWT New detects is verified against the JWKS of the
// ChatGPT base: one signed by the server's issuer works, a forged one and
// keys fetched through a redirect do not.

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// An Agent Identity JWT (here in CODEX_ACCESS_TOKEN) is verified against
// the JWKS: one signed by the server's issuer works, one signed by another
// key under the same kid is rejected.
func TestNewTransportJWT(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
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
	base := newHTTPBase(t)
	for _, tc := range []struct {
		name string
		jwt  string
		ok   bool
	}{{"verified", good, true}, {"forged", forged, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tryEnv(t, fromHome(srv, base, t.TempDir(), envVars{"CODEX_ACCESS_TOKEN": tc.jwt}.get))
			if !tc.ok {
				if err == nil {
					t.Fatal("a JWT signed by another key was accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if echo := getEcho(t, e.rt, srv.URL()+"/v1/echo"); echo.Mode != identitytest.ModeAssertion || echo.AgentRuntimeID != "rt-jwt" {
				t.Fatalf("echo = %+v", echo)
			}
		})
	}
}

// The JWKS that verifies an Agent Identity JWT is fetched from the URL the
// https-only rule checked, never from where a redirect points: a JWKS base
// that redirects (here to the genuine keys) fails the verification.
func TestNewTransportJWKSFetchFollowsNoRedirect(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
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
	base := newHTTPBase(t)
	getenv := envVars{"CODEX_ACCESS_TOKEN": good}
	// The two bases named one by one, not by BaseURL, which would point
	// the JWKS override at the server whatever the environment says.
	build := func() error {
		o := fromHome(srv, base, t.TempDir(), getenv.get)
		o.chatGPTURL = srv.URL()
		_, err := tryEnv(t, o)
		return err
	}
	// The genuine base verifies it; a base that redirects to the same keys
	// does not.
	if err := build(); err != nil {
		t.Fatalf("the genuine JWKS base: %v", err)
	}
	getenv[identity.EnvJWKSBase] = redirector.URL
	err = build()
	if err == nil {
		t.Fatal("the JWKS was fetched through a redirect")
	}
	if redirected.Load() == 0 {
		t.Fatalf("the JWKS base was never asked (%v): the test proves nothing", err)
	}
}
