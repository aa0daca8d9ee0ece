package transport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// A login Detect read, given to two transports: closing one (twice, even)
// must not stop the refreshes the other still needs; closing the last one
// does. On a clock 2 h fast the login is due at once, so the first request
// through the open transport refreshes it.
func TestClosingOneTransportKeepsASharedLoginRefreshing(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	getenv := envVars{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get
	detectOpts := transport.Options{CodexHome: home, Getenv: getenv, BaseURL: srv.URL()}
	testhooks.Of(&detectOpts).Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	cred, err := transport.Detect(context.Background(), detectOpts)
	if err != nil {
		t.Fatal(err)
	}
	build := func() *transport.Transport {
		o := fromHome(srv, newHTTPBase(t), home, getenv)
		o.detect, o.credential, o.flag = false, cred, featureflag.New(false)
		return newEnv(t, o).rt
	}
	first, second := build(), build()
	first.Close()
	first.Close() // a second Close must not count twice

	if e := getEcho(t, second, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeBearer {
		t.Fatalf("echo = %+v", e)
	}
	if n := srv.Stats().TokenRefreshes; n != 1 {
		t.Fatalf("after closing the other transport: %d token refreshes, want 1 (the shared login stopped refreshing)", n)
	}
}

// Once every transport of a detected login is closed it no longer
// refreshes, so New refuses to build another on it rather than hand out a
// transport that fails at the next expiry.
func TestClosedDetectedLoginIsRefusedByNew(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	getenv := envVars{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get
	cred, err := transport.Detect(context.Background(), transport.Options{CodexHome: home, Getenv: getenv, BaseURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	opts := transport.Options{Credential: cred, CodexHome: home, Getenv: getenv, BaseURL: srv.URL(), AgentIdentity: featureflag.New(false)}
	rt, err := transport.New(newHTTPBase(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	if _, err := transport.New(newHTTPBase(t), opts); !errors.Is(err, transport.ErrInvalidOptions) {
		t.Fatalf("New on a closed login: %v, want ErrInvalidOptions", err)
	}
}
