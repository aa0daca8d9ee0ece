package agentauth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/testhooks"
)

// A machine whose clock runs 2 h fast: the login in auth.json looks
// expired, so the first request refreshes; the tokens the endpoint then
// issues are judged by its clock, and 20 requests cost one exchange.
func TestLoadWithClockTwoHoursFastRefreshesOnce(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	cfg := loopback(srv)
	testhooks.Of(&cfg).Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	off := false
	setup, err := agentauth.Load(context.Background(), agentauth.Options{
		CodexHome: home, Getenv: env{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get, UseAgentIdentity: &off,
		HTTPClient: &http.Client{Transport: base}, Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	rt, err := setup.Transport(base)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if e := echo(t, rt, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeBearer {
			t.Fatalf("echo = %+v", e)
		}
	}
	if n := srv.Stats().TokenRefreshes; n > 1 {
		t.Fatalf("20 requests with the clock 2 h fast cost %d token exchanges, want at most 1", n)
	}
}
