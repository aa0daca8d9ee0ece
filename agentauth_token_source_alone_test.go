package agentauth_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/login"
	"github.com/agentauth/agentauth/transport"
)

// A Codex home without a login plus a caller's token source (here a
// command, as Codex's provider auth command) is a ChatGPT-style login whose
// token the command prints; it is sent as Bearer to the first-party server.
func TestTokenSourceAloneIsTheLogin(t *testing.T) {
	const token = "command-printed-token"
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	script := filepath.Join(t.TempDir(), "print-token")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho "+token+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	ts, err := login.CommandTokenSource([]string{script}, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	client, err := agentauth.NewClient(agentauth.Options{CodexHome: t.TempDir(), BaseURL: srv.URL(), Config: transport.Config{TokenSource: ts}})
	if err != nil {
		t.Fatalf("NewClient with only a token source: %v", err)
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL() + "/v1/responses")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 (the command's token as Bearer)", resp.StatusCode)
	}
}
