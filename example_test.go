package agentauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// The one-call start: a client authenticated from ~/.codex (or
// $CODEX_HOME) as the Codex CLI is.
func ExampleNewClient() {
	client, err := agentauth.NewClient(agentauth.Options{})
	if err != nil {
		fmt.Println("no Codex login here:", err != nil)
		return
	}
	defer client.CloseIdleConnections()
	ctx := transport.WithThread(context.Background(), "conversation-42") // optional: one task per thread
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://chatgpt.com/backend-api/codex/models", nil)
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}

	// Without a thread key (background work): the hidden process task.
	resp, err = client.Get("https://chatgpt.com/backend-api/wham/tasks")
	if err == nil {
		resp.Body.Close()
	}
}

// NewTransport against the reference server: a ChatGPT login written the
// way `codex login` writes it, refreshed by the transport itself.
func ExampleNewTransport() {
	srv, _ := identitytest.NewServer(identitytest.Options{})
	defer srv.Close()
	login, _ := srv.IssueLogin(identitytest.LoginClaims{AccountID: "acct-example", UserID: "user-example"})
	home, _ := os.MkdirTemp("", "codex-home")
	defer os.RemoveAll(home)
	_ = identitytest.WriteAuthJSON(home, login, time.Now())

	off := false
	env := map[string]string{"CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}
	rt, err := agentauth.NewTransport(nil, agentauth.Options{
		CodexHome:        home,
		Getenv:           func(k string) string { return env[k] },
		UseAgentIdentity: &off,
		Config: transport.Config{
			ChatGPTBaseURL:    srv.URL(),
			AuthAPIBaseURL:    srv.URL(),
			AllowInsecureHTTP: true, // loopback test server only
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL() + "/v1/echo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.Status)
	// Output: 200 OK
}
