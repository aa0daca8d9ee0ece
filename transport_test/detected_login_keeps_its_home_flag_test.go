package transport_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// Detect reads a login from one Codex home; the Options then given to New
// name only that Credential. The use_agent_identity switch must come from
// the login's own home (its config.toml turns it on), not from whatever
// $CODEX_HOME points at.
func TestDetectedLoginKeepsItsHomeFlag(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	home, _ := chatGPTHome(t, srv)
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte("[features]\nuse_agent_identity = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := envVars{"CODEX_HOME": t.TempDir(), "CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}.get
	cred, err := transport.Detect(context.Background(), transport.Options{CodexHome: home, Getenv: getenv, BaseURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := transport.New(newHTTPBase(t), transport.Options{Credential: cred, Getenv: getenv, BaseURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	if e := getEcho(t, rt, srv.URL()+"/v1/echo"); e.Mode != identitytest.ModeAssertion {
		t.Fatalf("mode %q: the flag was read from $CODEX_HOME, not from the home the login came from", e.Mode)
	}
}
