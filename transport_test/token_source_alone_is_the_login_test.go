package transport_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/login"
	"github.com/agentauth/agentauth/transport"
)

// A Codex home without a login plus a caller's token source (here a
// command, as Codex's provider auth command) is a ChatGPT-style login whose
// token the command prints; NewClient sends it as Bearer to the
// first-party server.
func TestTokenSourceAloneIsTheLogin(t *testing.T) {
	const token = "command-printed-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	script := filepath.Join(t.TempDir(), "print-token")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho "+token+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	ts, err := login.CommandTokenSource([]string{script}, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tryEnv(t, envOptions{srv: srv, plain: true, viaNewClient: true, credential: transport.ChatGPT(ts), flagFromHome: true, defaultStore: true})
	if err != nil {
		t.Fatalf("NewClient with only a token source: %v", err)
	}
	resp, err := e.client.Get(srv.URL() + "/v1/responses")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 (the command's token as Bearer)", resp.StatusCode)
	}
}
