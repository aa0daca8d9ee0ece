package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// The AgentAssertion header is a pure function of key, runtime, task and
// second; this reproduces the header of docs/protocol.md#test-vectors.
func ExampleSignAssertion() {
	key, err := identity.NewPrivateKeyFromSeed(bytes.Repeat([]byte{0x07}, 32))
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)
	header, err := identity.SignAssertion(key, "agent-123", "task-123", at)
	if err != nil {
		panic(err)
	}
	fmt.Println(header)
	// Output:
	// AgentAssertion eyJhZ2VudF9ydW50aW1lX2lkIjoiYWdlbnQtMTIzIiwic2lnbmF0dXJlIjoiK0dsck9LUi9GSHh4aGttT2hnNWhqMTkrNU83aE0yTWd4TnJnVGZSZ0lYOENZbjEzQUpFU3Y1eVhrd3dVQzlqRGQ4Y3ZRUk11MWY4UHliZjYvTEJnRHc9PSIsInRhc2tfaWQiOiJ0YXNrLTEyMyIsInRpbWVzdGFtcCI6IjIwMjYtMDQtMjNUMDA6MDA6MDBaIn0
}

// RegisterTask registers a thread task against an AuthAPI; here a stand-in
// server checks the signature and answers with a sealed task id.
func ExampleClient_RegisterTask() {
	key, _ := identity.NewPrivateKeyFromSeed(bytes.Repeat([]byte{0x07}, 32))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		raw, _ := io.ReadAll(r.Body)
		if json.Unmarshal(raw, &body) != nil ||
			identity.VerifyRegistrationSignature(key.PublicKey(), "agent-123", body["timestamp"], body["signature"]) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println(r.Method, r.URL.Path, "external_task_ref =", body["external_task_ref"])
		sealed, _ := identity.SealTaskID(key.PublicKey(), "task-for-"+body["external_task_ref"], nil)
		json.NewEncoder(w).Encode(map[string]string{"encrypted_task_id": sealed})
	}))
	defer srv.Close()

	c := &identity.Client{HTTPClient: srv.Client(), AuthAPIBase: srv.URL + "/api/accounts"}
	taskID, err := c.RegisterTask(context.Background(), key, "agent-123", "thread-42")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("task id:", taskID)
	// Output:
	// POST /api/accounts/v1/agent/agent-123/task/register external_task_ref = thread-42
	// task id: task-for-thread-42
}

// Base URLs derive from the ChatGPT backend base unless the environment
// overrides them.
func ExampleResolveBaseURLs() {
	noEnv := func(string) string { return "" }
	b := identity.ResolveBaseURLs(noEnv, "https://chatgpt.com/backend-api/")
	fmt.Println(b.AuthAPI)
	fmt.Println(identity.JWKSURL(b.JWKS))
	// Output:
	// https://auth.openai.com/api/accounts
	// https://chatgpt.com/backend-api/wham/agent-identities/jwks
}
