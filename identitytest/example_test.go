package identitytest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// ExampleNewServer registers a thread task with a signed body and then
// calls a protected resource with an AgentAssertion on that task.
func ExampleNewServer() {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	key, _ := identity.GenerateKey(nil)
	rec := identity.Record{AgentRuntimeID: "agent-123", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey())}
	if err := srv.RegisterRuntime(rec); err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	// Task registration: no Authorization, the body signature is the proof.
	sig, ts := identity.RegistrationSignature(key, "agent-123", time.Now())
	body := fmt.Sprintf(`{"timestamp":%q,"signature":%q,"external_task_ref":"thread-1"}`, ts, sig)
	resp, err := client.Post(srv.URL()+"/v1/agent/agent-123/task/register", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	var task struct {
		TaskID string `json:"task_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()

	// A protected resource verifies the assertion and echoes what it saw.
	header, _ := identity.SignAssertion(key, "agent-123", task.TaskID, time.Now())
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/responses", nil)
	req.Header.Set("Authorization", header)
	req.Header.Set("ChatGPT-Account-ID", "acct-1")
	resp, err = client.Do(req)
	if err != nil {
		panic(err)
	}
	var echo identitytest.Echo
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()

	st := srv.Stats()
	fmt.Println(resp.StatusCode, echo.Mode, echo.AgentRuntimeID, echo.ExternalTaskRef, echo.AccountID)
	fmt.Println("thread registrations:", st.ThreadTaskRegistrations, "assertions:", st.RequestsByMode["assertion"])
	// Output:
	// 200 assertion agent-123 thread-1 acct-1
	// thread registrations: 1 assertions: 1
}

// ExampleServer_InjectFault makes the next task registration fail with 503
// and Retry-After, as a backend under load would.
func ExampleServer_InjectFault() {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: 503, RetryAfter: "1", Times: 1})

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Post(srv.URL()+"/v1/agent/agent-123/task/register", "application/json", strings.NewReader(`{}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"), srv.Stats().FaultsServed)
	// Output: 503 1 1
}
