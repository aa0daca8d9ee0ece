package interop_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// newGoOpenAI returns a go-openai client that sends through hc to
// base+"/v1" with the SDK's own API key.
func newGoOpenAI(hc goopenai.HTTPDoer, base string) *goopenai.Client {
	cfg := goopenai.DefaultConfig(sdkAPIKey)
	cfg.BaseURL = base + "/v1"
	cfg.HTTPClient = hc
	return goopenai.NewClientWithConfig(cfg)
}

func createResponse(ctx context.Context, c *goopenai.Client) (goopenai.CreateResponseResponse, error) {
	return c.CreateResponse(ctx, goopenai.CreateResponseRequest{Model: "gpt-test", Input: "hi"})
}

func goOpenAIEcho(t *testing.T, ctx context.Context, c *goopenai.Client) identitytest.Echo {
	t.Helper()
	resp, err := createResponse(ctx, c)
	if err != nil {
		t.Fatalf("CreateResponse: %v", err)
	}
	if resp.Object != "response" || resp.Status != "completed" || resp.Model != "gpt-test" || !strings.HasPrefix(resp.ID, "resp_") {
		t.Fatalf("SDK parsed %q %q %q %q", resp.ID, resp.Object, resp.Status, resp.Model)
	}
	return echoFrom(t, metadataStrings(t, resp.Metadata))
}

func TestGoOpenAIThreadAndProcessTasks(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	rec := newRecord(t, srv, false)
	hc, sent, _ := agentClient(t, srv, rec)
	c := newGoOpenAI(hc, srv.URL())

	got := goOpenAIEcho(t, transport.WithThread(context.Background(), "thread-1"), c)
	wantAssertion(t, srv, rec, "thread-1", got, identitytest.ResponsesPath)

	chat, err := c.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
		Model:    "gpt-test",
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "hi"}},
	})
	if err != nil {
		t.Fatalf("CreateChatCompletion: %v", err)
	}
	if len(chat.Choices) != 1 || chat.Object != "chat.completion" || chat.Choices[0].FinishReason != goopenai.FinishReasonStop {
		t.Fatalf("chat completion %+v", chat)
	}
	var md map[string]string
	if err := json.Unmarshal([]byte(chat.Choices[0].Message.Content), &md); err != nil {
		t.Fatalf("chat content %q: %v", chat.Choices[0].Message.Content, err)
	}
	wantAssertion(t, srv, rec, "", echoFrom(t, md), identitytest.ChatCompletionsPath)

	for _, r := range sent.resourceRequests() {
		if got := r.Header.Get("Authorization"); strings.Contains(got, sdkAPIKey) || !strings.HasPrefix(got, "AgentAssertion ") {
			t.Errorf("%s carried %.20q..., want an AgentAssertion", r.URL, got)
		}
	}
}

func TestGoOpenAIFlagOffKeepsBearer(t *testing.T) {
	srv := newServer(t, identitytest.Options{AccessTokens: []string{accessToken}})
	hc, sent, _ := loginClient(t, srv, "acct-login")
	got := goOpenAIEcho(t, transport.WithThread(context.Background(), "thread-1"), newGoOpenAI(hc, srv.URL()))
	want := identitytest.Echo{Mode: identitytest.ModeBearer, AccountID: "acct-login", Path: identitytest.ResponsesPath}
	if got != want {
		t.Errorf("server verified %+v, want %+v", got, want)
	}
	reqs := sent.requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+accessToken {
		t.Errorf("flag off sent %d requests, want one with the login's Bearer", len(reqs))
	}
	if st := srv.Stats(); st.AgentRegistrations+st.ThreadTaskRegistrations+st.ProcessTaskRegistrations != 0 {
		t.Errorf("flag off registered something: %+v", st)
	}
}

// go-openai has no retry of its own: a 500 reaches the caller as the SDK's
// *APIError, and the retry a caller adds in front of agentauth (here
// go-retryablehttp as the SDK's HTTPClient) is re-signed on every attempt.
func TestGoOpenAIRetryIsResigned(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	rec := newRecord(t, srv, false)
	hc, sent, _ := agentClient(t, srv, rec)
	ctx := transport.WithThread(context.Background(), "thread-1")

	// An OpenAI-shaped error body, so that the SDK reports its APIError.
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusInternalServerError, Times: 1,
		Body: []byte(`{"error":{"message":"injected","type":"server_error"}}`)})
	_, err := createResponse(ctx, newGoOpenAI(hc, srv.URL()))
	var apiErr *goopenai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusInternalServerError {
		t.Fatalf("CreateResponse during the fault: %v, want the SDK's APIError 500", err)
	}

	retrying := retryablehttp.NewClient()
	retrying.HTTPClient = hc
	retrying.RetryMax = 2
	retrying.RetryWaitMin, retrying.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	retrying.Logger = nil
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusInternalServerError, Times: 1})
	got := goOpenAIEcho(t, ctx, newGoOpenAI(retrying.StandardClient(), srv.URL()))
	wantAssertion(t, srv, rec, "thread-1", got, identitytest.ResponsesPath)

	task := taskFor(t, srv, rec.AgentRuntimeID, "thread-1")
	var attempts []sentRequest
	for _, r := range sent.resourceRequests() {
		if strings.HasSuffix(r.URL, identitytest.ResponsesPath) {
			attempts = append(attempts, r)
		}
	}
	if len(attempts) != 3 { // the plain 500, then the retried 500 and its success
		t.Fatalf("%d attempts reached the network, want 3", len(attempts))
	}
	for _, a := range attempts {
		verifyAssertion(t, rec, a.Header.Get("Authorization"), task.TaskID)
	}
	seen := srv.Requests()
	if len(seen) != 1 || seen[0].Status != http.StatusOK || seen[0].Echo.TaskID != task.TaskID {
		t.Errorf("server saw %v, want one verified success", seen)
	}
	if st := srv.Stats(); st.FaultsServed != 2 || st.ThreadTaskRegistrations != 1 {
		t.Errorf("server stats %+v", st)
	}
}

func TestGoOpenAIKeyReplacedOnlyForFirstParty(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	other := newServer(t, identitytest.Options{APIKeys: []string{sdkAPIKey}})
	rec := newRecord(t, srv, false)
	hc, _, _ := agentClient(t, srv, rec)

	wantAssertion(t, srv, rec, "", goOpenAIEcho(t, context.Background(), newGoOpenAI(hc, srv.URL())), identitytest.ResponsesPath)

	got := goOpenAIEcho(t, transport.WithThread(context.Background(), "thread-x"), newGoOpenAI(hc, other.URL()))
	if got.Mode != identitytest.ModeBearer {
		t.Errorf("other server verified %+v, want the SDK's Bearer key", got)
	}
	seen := other.Requests()
	if len(seen) != 1 || seen[0].Header.Get("Authorization") != "Bearer "+sdkAPIKey {
		t.Errorf("other server saw %v, want the SDK's own key", seen)
	}
	if st := srv.Stats(); st.ThreadTaskRegistrations != 0 {
		t.Errorf("a third-party call registered a thread task: %+v", st)
	}
}
