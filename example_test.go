package agentauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// The one-call start: a client authenticated from ~/.codex (or
// $CODEX_HOME) as the Codex CLI is. The README's first case; its snippet is
// compiled by TestDocsGoSnippetsCompile.
func ExampleNewClient() {
	client, err := agentauth.NewClient(agentauth.Options{}) // reads $CODEX_HOME (default ~/.codex)
	if err != nil {
		fmt.Println("no Codex login here:", err != nil)
		return
	}
	defer client.CloseIdleConnections()
	ctx := transport.WithThread(context.Background(), "conversation-42") // optional: one task per thread
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://chatgpt.com/backend-api/codex/models", nil)
	if err != nil {
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
}

// NewTransport against the reference server, with use_agent_identity on:
// a ChatGPT login written the way `codex login` writes it, refreshed by the
// transport itself, provisioned an agent identity, a thread request signed
// on the thread's task and a background request on the process task.
// BaseURL is the one setting that points everything at the server (the
// ChatGPT and AuthAPI bases, the token endpoint, the JWKS, the allow-list,
// and plain http because the server is on loopback).
func ExampleNewTransport() {
	srv, _ := identitytest.NewServer(identitytest.Options{})
	defer srv.Close()
	login, _ := srv.IssueLogin(identitytest.Login{AccountID: "acct-example", UserID: "user-example"})
	home, _ := os.MkdirTemp("", "codex-home")
	defer os.RemoveAll(home)
	_ = login.WriteAuthJSON(home, time.Now())

	on := true
	rt, err := agentauth.NewTransport(nil, agentauth.Options{
		CodexHome:        home,
		BaseURL:          srv.URL(),
		UseAgentIdentity: &on,
		Getenv:           func(string) string { return "" }, // ignore this machine's environment
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()

	for _, ctx := range []context.Context{
		transport.WithThread(context.Background(), "conversation-42"),
		context.Background(), // background work: the process task
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/v1/responses", nil)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		var echo identitytest.Echo
		_ = json.NewDecoder(resp.Body).Decode(&echo)
		resp.Body.Close()
		fmt.Printf("%s %s task for %q\n", resp.Status, echo.Mode, echo.ExternalTaskRef)
	}
	// Output:
	// 200 OK assertion task for "conversation-42"
	// 200 OK assertion task for ""
}
