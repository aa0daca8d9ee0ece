package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// exampleServer starts the reference server on loopback and gives it an
// Agent Identity with the given runtime id, in the JSON form auth.json
// and `agentauth keygen` hold it.
func exampleServer(runtimeID string) (*identitytest.Server, transport.Credential) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		panic(err)
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	rec := identity.Record{AgentRuntimeID: runtimeID, AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-example"}
	if err := srv.RegisterRuntime(rec); err != nil {
		panic(err)
	}
	recordJSON, err := rec.StorageJSON()
	if err != nil {
		panic(err)
	}
	cred, err := transport.AgentIdentity(recordJSON)
	if err != nil {
		panic(err)
	}
	return srv, cred
}

// exampleOptions points every service at the loopback server. In
// production BaseURL stays empty (https://chatgpt.com and the AuthAPI
// apply) and the flag, left nil, is read from the environment and
// config.toml.
func exampleOptions(srv *identitytest.Server, cred transport.Credential) transport.Options {
	return transport.Options{
		Credential:    cred,
		BaseURL:       srv.URL(), // plain http: loopback only
		AgentIdentity: featureflag.New(false),
	}
}

// exampleHome is a Codex home holding a ChatGPT login the server issued,
// written the way `codex login` writes it.
func exampleHome(srv *identitytest.Server) string {
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-example", UserID: "user-example"})
	if err != nil {
		panic(err)
	}
	home, err := os.MkdirTemp("", "codex-home")
	if err != nil {
		panic(err)
	}
	if err := login.WriteAuthJSON(home, time.Now()); err != nil {
		panic(err)
	}
	return home
}

// noEnv ignores this machine's environment.
func noEnv(string) string { return "" }

// exampleEcho prints what the server verified about a response.
func exampleEcho(resp *http.Response) {
	defer resp.Body.Close()
	var echo identitytest.Echo
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		panic(err)
	}
	fmt.Printf("%d %s external_task_ref=%q account=%s\n", resp.StatusCode, echo.Mode, echo.ExternalTaskRef, echo.AccountID)
}

// The one-call start: a client authenticated from the Codex home as the
// Codex CLI is (here a temporary one; by default $CODEX_HOME, else
// ~/.codex). With the flag off a ChatGPT login is plain Bearer.
func ExampleNewClient() {
	srv, _ := identitytest.NewServer(identitytest.Options{})
	defer srv.Close()
	home := exampleHome(srv)
	defer os.RemoveAll(home)

	client, err := transport.NewClient(transport.Options{CodexHome: home, BaseURL: srv.URL(), Getenv: noEnv})
	if err != nil {
		fmt.Println("no Codex login here:", err)
		return
	}
	defer client.CloseIdleConnections()
	ctx := transport.WithThread(context.Background(), "conversation-42") // optional: one task per thread
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/models", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	exampleEcho(resp)
	// Output:
	// 200 bearer external_task_ref="" account=acct-example
}

// New against the reference server, with use_agent_identity on: the
// ChatGPT login of the Codex home, refreshed by the transport itself,
// provisioned an agent identity, a thread request signed on the thread's
// task and a background request on the process task. BaseURL is the one
// setting that points everything at the server (the ChatGPT and AuthAPI
// bases, the token endpoint, the JWKS, the allow-list, and plain http
// because the server is on loopback).
func ExampleNew() {
	srv, _ := identitytest.NewServer(identitytest.Options{})
	defer srv.Close()
	home := exampleHome(srv)
	defer os.RemoveAll(home)

	rt, err := transport.New(nil, transport.Options{
		CodexHome:     home, // the zero Credential: detected there
		BaseURL:       srv.URL(),
		AgentIdentity: featureflag.New(true),
		Getenv:        noEnv,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()
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
		exampleEcho(resp)
	}
	// Output:
	// 200 assertion external_task_ref="conversation-42" account=acct-example
	// 200 assertion external_task_ref="" account=acct-example
}

// Detect finds the credential of a Codex home and the environment as the
// Codex CLI does, for a caller that looks before it builds; printing it
// names its kind and source, never its secret.
func ExampleDetect() {
	srv, _ := identitytest.NewServer(identitytest.Options{})
	defer srv.Close()
	home := exampleHome(srv)
	defer os.RemoveAll(home)

	cred, err := transport.Detect(context.Background(), transport.Options{CodexHome: home, Getenv: noEnv})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Replace(fmt.Sprint(cred), filepath.Join(home, "auth.json"), "$CODEX_HOME/auth.json", 1))

	env := map[string]string{"CODEX_API_KEY": "sk-example"}
	cred, _ = transport.Detect(context.Background(), transport.Options{CodexHome: home, Getenv: func(k string) string { return env[k] }})
	fmt.Println(cred)

	_, err = transport.Detect(context.Background(), transport.Options{CodexHome: os.TempDir() + "/no-codex-home-here", Getenv: noEnv})
	fmt.Println(errors.Is(err, transport.ErrNoCredential))
	// Output:
	// ChatGPT login from $CODEX_HOME/auth.json
	// API key from env CODEX_API_KEY
	// true
}

// Wrap an http.Client once; requests without a thread key are signed with
// the identity's process task, registered once on first use.
func Example() {
	srv, cred := exampleServer("rt-example")
	defer srv.Close()

	rt, err := transport.New(&http.Transport{}, exampleOptions(srv, cred))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()

	for range 2 {
		resp, err := client.Get(srv.URL() + "/v1/models")
		if err != nil {
			panic(err)
		}
		exampleEcho(resp)
	}
	st := srv.Stats()
	fmt.Println("process-task registrations:", st.ProcessTaskRegistrations, "thread-task registrations:", st.ThreadTaskRegistrations)
	// Output:
	// 200 assertion external_task_ref="" account=acct-example
	// 200 assertion external_task_ref="" account=acct-example
	// process-task registrations: 1 thread-task registrations: 0
}

// Tag work with a conversation thread through the request's context: each
// thread gets its own task (registered once, with external_task_ref).
func ExampleWithThread() {
	srv, cred := exampleServer("rt-example-thread")
	defer srv.Close()

	rt, err := transport.New(&http.Transport{}, exampleOptions(srv, cred))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()

	for _, thread := range []string{"thread-1", "thread-1", "thread-2"} {
		ctx := transport.WithThread(context.Background(), thread)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/v1/responses", strings.NewReader(`{"input":"hi"}`))
		if err != nil {
			panic(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		exampleEcho(resp)
	}
	st := srv.Stats()
	fmt.Println("thread-task registrations:", st.ThreadTaskRegistrations, st.RegistrationsByExternalRef)
	// Output:
	// 200 assertion external_task_ref="thread-1" account=acct-example
	// 200 assertion external_task_ref="thread-1" account=acct-example
	// 200 assertion external_task_ref="thread-2" account=acct-example
	// thread-task registrations: 2 map[thread-1:1 thread-2:1]
}

// Compose with go-retryablehttp: install the agentauth transport as the
// retrying client's HTTPClient.Transport, so every attempt is authenticated
// afresh, and let transport.RetryPolicy stop retries of permanent
// authentication errors.
func Example_retryablehttp() {
	srv, cred := exampleServer("rt-example-retry")
	defer srv.Close()
	// The first attempt meets an overloaded backend.
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: 1})

	rt, err := transport.New(&http.Transport{}, exampleOptions(srv, cred))
	if err != nil {
		panic(err)
	}
	client := retryablehttp.NewClient()
	client.HTTPClient.Transport = rt
	client.CheckRetry = transport.RetryPolicy(retryablehttp.DefaultRetryPolicy)
	client.RetryWaitMin, client.RetryWaitMax = 10*time.Millisecond, 50*time.Millisecond
	client.Logger = nil
	defer client.HTTPClient.CloseIdleConnections()
	attempts := 0
	client.RequestLogHook = func(retryablehttp.Logger, *http.Request, int) { attempts++ }

	ctx := transport.WithThread(context.Background(), "thread-1")
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/v1/responses", []byte(`{"input":"hi"}`))
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	exampleEcho(resp)
	st := srv.Stats()
	fmt.Println("attempts:", attempts, "faults served:", st.FaultsServed, "thread-task registrations:", st.ThreadTaskRegistrations)

	// An invalid thread key is a permanent error: no retry, no registration.
	bad := transport.WithThread(context.Background(), "bad\nkey")
	req, _ = retryablehttp.NewRequestWithContext(bad, http.MethodGet, srv.URL()+"/v1/models", nil)
	attempts = 0
	_, err = client.Do(req)
	fmt.Println("attempts:", attempts, "invalid thread key:", errors.Is(err, transport.ErrInvalidThreadKey))
	// Output:
	// 200 assertion external_task_ref="thread-1" account=acct-example
	// attempts: 2 faults served: 1 thread-task registrations: 1
	// attempts: 1 invalid thread key: true
}
