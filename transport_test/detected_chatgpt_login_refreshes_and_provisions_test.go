package transport_test

// A ChatGPT login New detects in a Codex home: provisioned into auth.json
// with the flag from the environment, refreshed once when expired (also
// on a machine whose clock runs fast), and refused with a clear error when
// the flag's own setting is invalid.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// A ChatGPT login with the flag from the environment: detected as the
// auth.json login, provisioned once, signed with AgentAssertion, and the
// identity lands in auth.json's agent_identity in Codex's record form.
func TestNewTransportChatGPTFlagFromEnv(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	base := newHTTPBase(t)
	o := fromHome(srv, base, home, envVars{"AGENTAUTH_USE_AGENT_IDENTITY": "true", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get)
	cred, err := transport.Detect(context.Background(), transport.Options{CodexHome: home, Getenv: o.getenv, BaseURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ChatGPT login from " + filepath.Join(home, credentials.AuthFileName); fmt.Sprint(cred) != want {
		t.Fatalf("Detect = %q, want %q", cred, want)
	}
	o.detect, o.credential = false, cred
	rt := newEnv(t, o).rt
	e := getEcho(t, rt, srv.URL()+"/v1/echo")
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
	srv := newIdentityServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	home, login := chatGPTHome(t, srv)
	offset.Store(0)
	o := fromHome(srv, newHTTPBase(t), home, envVars{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get)
	o.flag = featureflag.New(false)
	rt := newEnv(t, o).rt
	if e := getEcho(t, rt, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeBearer {
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

// A machine whose clock runs 2 h fast: the login in auth.json looks
// expired, so the first request refreshes; the tokens the endpoint then
// issues are judged by its clock, and 20 requests cost one exchange.
func TestLoadWithClockTwoHoursFastRefreshesOnce(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	o := fromHome(srv, newHTTPBase(t), home, envVars{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get)
	o.flag = featureflag.New(false)
	o.options = func(o *transport.Options) {
		testhooks.Of(o).Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	}
	rt := newEnv(t, o).rt
	for range 20 {
		if e := getEcho(t, rt, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeBearer {
			t.Fatalf("echo = %+v", e)
		}
	}
	if n := srv.Stats().TokenRefreshes; n > 1 {
		t.Fatalf("20 requests with the clock 2 h fast cost %d token exchanges, want at most 1", n)
	}
}

func TestNewTransportRejectsInvalidFlag(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	_, err := tryEnv(t, fromHome(srv, nil, home, envVars{"AGENTAUTH_USE_AGENT_IDENTITY": "maybe"}.get))
	if err == nil || !strings.Contains(err.Error(), "AGENTAUTH_USE_AGENT_IDENTITY") {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[features]\nuse_agent_identity = \"yes please\"\n"), 0o600)
	if _, err := tryEnv(t, fromHome(srv, nil, home, envVars{}.get)); err == nil {
		t.Fatal("an invalid config.toml value was accepted")
	}
}
