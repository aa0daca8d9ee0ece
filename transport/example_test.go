package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// exampleServer starts the reference server on loopback and gives it an
// Agent Identity with the given runtime id, as auth.json would hold it.
func exampleServer(runtimeID string) (*identitytest.Server, *credentials.Credentials) {
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
	return srv, &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec}
}

// exampleConfig points every base URL at the loopback server. In
// production the defaults (https://chatgpt.com and the AuthAPI) apply and
// only Credentials (and Flag, for a ChatGPT login) need setting.
func exampleConfig(srv *identitytest.Server, creds *credentials.Credentials) transport.Config {
	return transport.Config{
		Credentials:       creds,
		ChatGPTBaseURL:    srv.URL(),
		AuthAPIBaseURL:    srv.URL(),
		AllowInsecureHTTP: true, // loopback only
	}
}

// exampleEcho prints what the server verified about a response.
func exampleEcho(resp *http.Response) {
	defer resp.Body.Close()
	var echo identitytest.Echo
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		panic(err)
	}
	fmt.Printf("%d %s external_task_ref=%q account=%s\n", resp.StatusCode, echo.Mode, echo.ExternalTaskRef, echo.AccountID)
}

// Wrap an http.Client once; requests without a thread key are signed with
// the identity's process task, registered once on first use.
func Example() {
	srv, creds := exampleServer("rt-example")
	defer srv.Close()

	rt, err := transport.New(&http.Transport{}, exampleConfig(srv, creds))
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
	srv, creds := exampleServer("rt-example-thread")
	defer srv.Close()

	rt, err := transport.New(&http.Transport{}, exampleConfig(srv, creds))
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
	srv, creds := exampleServer("rt-example-retry")
	defer srv.Close()
	// The first attempt meets an overloaded backend.
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: 1})

	rt, err := transport.New(&http.Transport{}, exampleConfig(srv, creds))
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
