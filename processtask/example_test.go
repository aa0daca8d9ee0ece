package processtask_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/processtask"
	"github.com/agentauth/agentauth/transport"
)

// A thread's handler makes a control-plane call with Background, and opens
// a connection that does not go through the RoundTripper (a WebSocket, an
// SSE stream) with Headers. Neither ever handles a task id.
func Example() {
	srv, _ := identitytest.NewServer(identitytest.Options{})
	defer srv.Close()
	key, _ := identity.GenerateKey(nil)
	rec := identity.Record{AgentRuntimeID: "rt-example", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-example"}
	_ = srv.RegisterRuntime(rec)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	recordJSON, _ := rec.StorageJSON() // the record as `agentauth keygen` writes it
	cred, _ := transport.AgentIdentity(recordJSON)
	rt, _ := transport.New(base, transport.Options{
		Credential: cred, BaseURL: srv.URL(), AgentIdentity: featureflag.New(false),
	})
	client := &http.Client{Transport: rt}

	// Inside a thread's handler.
	ctx := transport.WithThread(context.Background(), "thread-1")

	// A control-plane call: the process task, not the thread's.
	req, _ := http.NewRequestWithContext(processtask.Background(ctx), http.MethodGet, srv.URL()+"/v1/models", nil)
	resp, _ := client.Do(req)
	resp.Body.Close()

	// Headers for a connection made outside the RoundTripper.
	h, err := processtask.Headers(ctx, rt, "ws"+strings.TrimPrefix(srv.URL(), "http")+"/v1/realtime")
	fmt.Println(err, strings.Fields(h.Get("Authorization"))[0], h.Get("ChatGPT-Account-ID"))

	// No credential for a foreign origin.
	_, err = processtask.Headers(ctx, rt, "wss://example.com/socket")
	fmt.Println(err)

	st := rt.Stats()
	fmt.Println("process task registrations:", st.ProcessRegistrations, "thread:", st.ThreadRegistrations)
	// Output:
	// <nil> AgentAssertion acct-example
	// processtask: the URL's origin is not first-party; no credential is sent there: wss://example.com
	// process task registrations: 1 thread: 1
}
