package interop_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/interop"
	"github.com/agentauth/agentauth/transport"
)

// startReferenceServer stands in for the ChatGPT backend: a reference
// server with the WebSocket echo, and an Agent Identity it knows. In
// production leave Options.Credential zero: transport.New detects it
// (auth.json, env) as transport.Detect does.
func startReferenceServer() (*identitytest.Server, transport.Credential) {
	srv, err := identitytest.NewServer(identitytest.Options{WebSocket: interop.WebSocketEcho})
	if err != nil {
		log.Fatal(err)
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-example", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-example"}
	if err := srv.RegisterRuntime(rec); err != nil {
		log.Fatal(err)
	}
	recordJSON, err := rec.StorageJSON() // the record as `agentauth keygen` writes it
	if err != nil {
		log.Fatal(err)
	}
	cred, err := transport.AgentIdentity(recordJSON)
	if err != nil {
		log.Fatal(err)
	}
	return srv, cred
}

// newHTTPClient wraps http.DefaultTransport with agentauth. BaseURL
// points it at the loopback reference server; in production leave it
// empty (https://chatgpt.com and https://api.openai.com are the default
// first-party origins). An Agent Identity always signs, so the flag (which
// picks the mode of a ChatGPT login) is fixed here instead of read from
// ~/.codex.
func newHTTPClient(srv *identitytest.Server, cred transport.Credential) *http.Client {
	rt, err := transport.New(nil, transport.Options{
		Credential:    cred,
		BaseURL:       srv.URL(),
		AgentIdentity: featureflag.New(false),
	})
	if err != nil {
		log.Fatal(err)
	}
	return &http.Client{Transport: rt}
}

// Example_openAIGo plugs agentauth into the official OpenAI Go SDK: the
// SDK sends through the wrapped client, and the context picks the task.
func Example_openAIGo() {
	srv, creds := startReferenceServer()
	defer srv.Close()
	httpClient := newHTTPClient(srv, creds)
	defer httpClient.CloseIdleConnections()

	baseURL := srv.URL() // production: https://api.openai.com or the ChatGPT backend
	client := openai.NewClient(
		option.WithHTTPClient(httpClient),
		option.WithBaseURL(baseURL+"/v1/"),
	)
	ctx := transport.WithThread(context.Background(), "thread-1")
	resp, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, resp.Metadata["mode"], resp.Metadata["external_task_ref"])
	// Output: completed assertion thread-1
}

// Example_goOpenAI plugs agentauth into github.com/sashabaranov/go-openai
// through ClientConfig.HTTPClient. A call without a thread is signed on the
// process task.
func Example_goOpenAI() {
	srv, creds := startReferenceServer()
	defer srv.Close()
	httpClient := newHTTPClient(srv, creds)
	defer httpClient.CloseIdleConnections()

	baseURL := srv.URL()
	cfg := goopenai.DefaultConfig("") // agentauth sets Authorization
	cfg.BaseURL = baseURL + "/v1"
	cfg.HTTPClient = httpClient
	client := goopenai.NewClientWithConfig(cfg)

	resp, err := client.CreateResponse(context.Background(), goopenai.CreateResponseRequest{
		Model: "gpt-5",
		Input: "hello",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, resp.Metadata["mode"], resp.Metadata["external_task_ref"] == "")
	// Output: completed assertion true
}

// Example_webSocket opens a Responses WebSocket with
// github.com/coder/websocket: the upgrade request goes through agentauth, so
// the handshake carries the AgentAssertion and the routing headers.
func Example_webSocket() {
	srv, creds := startReferenceServer()
	defer srv.Close()
	httpClient := newHTTPClient(srv, creds) // no http.Client.Timeout: it would end the socket
	defer httpClient.CloseIdleConnections()

	ctx := transport.WithThread(context.Background(), "thread-1")
	url := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/responses"
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: httpClient})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.CloseNow()

	var verified identitytest.Echo // the reference server's first message
	if err := wsjson.Read(ctx, conn, &verified); err != nil {
		log.Fatal(err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create"}`)); err != nil {
		log.Fatal(err)
	}
	_, echoed, err := conn.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	fmt.Println(verified.Mode, verified.ExternalTaskRef, verified.AccountID)
	fmt.Println(string(echoed))
	// Output:
	// assertion thread-1 acct-example
	// {"type":"response.create"}
}
