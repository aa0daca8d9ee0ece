package identitytest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// The headline scenario against the reference server: a ChatGPT login with
// use_agent_identity on is provisioned an Agent Identity on first use; a
// request tagged with a thread is signed on that thread's task, a request
// without one on the process task. BaseURL names the server: it decides
// which origin is first-party, and a request to any other origin would be
// sent without a credential.
func ExampleServer_chatGPTLoginWithTheFlagOn() {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"at-example"}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// The provisioned identity is kept in memory; a login detected from
	// auth.json keeps it in auth.json.
	rt, err := transport.New(&http.Transport{}, transport.Options{
		Credential:    transport.BearerToken("at-example", "acct-example", false),
		AgentIdentity: featureflag.New(true),
		BaseURL:       srv.URL(), // plain http: accepted on loopback only
	})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()

	send := func(ctx context.Context) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/v1/responses", strings.NewReader(`{"input":"hi"}`))
		if err != nil {
			panic(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var echo identitytest.Echo
		if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
			panic(err)
		}
		fmt.Printf("%d %s external_task_ref=%q account=%s\n", resp.StatusCode, echo.Mode, echo.ExternalTaskRef, echo.AccountID)
	}
	send(transport.WithThread(context.Background(), "thread-1"))
	send(transport.WithThread(context.Background(), "thread-1"))
	send(context.Background())

	st := srv.Stats()
	fmt.Println("agents:", st.AgentRegistrations, "thread tasks:", st.ThreadTaskRegistrations, "process tasks:", st.ProcessTaskRegistrations)
	// Output:
	// 200 assertion external_task_ref="thread-1" account=acct-example
	// 200 assertion external_task_ref="thread-1" account=acct-example
	// 200 assertion external_task_ref="" account=acct-example
	// agents: 1 thread tasks: 1 process tasks: 1
}
