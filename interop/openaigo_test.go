package interop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// newOpenAIGo returns an official-SDK client that sends through hc to
// base+"/v1/", with the SDK's own API key set, as a caller would have it
// configured before adding agentauth.
func newOpenAIGo(hc *http.Client, base string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithHTTPClient(hc),
		option.WithBaseURL(base + "/v1/"),
		option.WithAPIKey(sdkAPIKey),
	}, opts...)...)
}

func newResponse(t *testing.T, ctx context.Context, c openai.Client) *responses.Response {
	t.Helper()
	resp, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-test",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
	})
	if err != nil {
		t.Fatalf("Responses.New: %v", err)
	}
	if resp.Object != "response" || resp.Status != responses.ResponseStatusCompleted || resp.Model != "gpt-test" || !strings.HasPrefix(resp.ID, "resp_") {
		t.Fatalf("SDK parsed %q %q %q %q", resp.ID, resp.Object, resp.Status, resp.Model)
	}
	return resp
}

func TestOpenAIGoThreadAndProcessTasks(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	rec := newRecord(t, srv, false)
	hc, sent, _ := agentClient(t, srv, rec)
	c := newOpenAIGo(hc, srv.URL())

	// A thread call is signed on thread-1's task.
	resp := newResponse(t, transport.WithThread(context.Background(), "thread-1"), c)
	wantAssertion(t, srv, rec, "thread-1", echoFrom(t, resp.Metadata), identitytest.ResponsesPath)
	// The SDK's own accessor reads the same facts from the output message.
	var md map[string]string
	if err := json.Unmarshal([]byte(resp.OutputText()), &md); err != nil || md["external_task_ref"] != "thread-1" {
		t.Errorf("OutputText %q: %v", resp.OutputText(), err)
	}

	// A call without a thread is signed on the process task; chat
	// completions go through the same transport.
	chat, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	if err != nil {
		t.Fatalf("Chat.Completions.New: %v", err)
	}
	if len(chat.Choices) != 1 || chat.Object != "chat.completion" || chat.Choices[0].FinishReason != "stop" {
		t.Fatalf("chat completion %+v", chat)
	}
	if err := json.Unmarshal([]byte(chat.Choices[0].Message.Content), &md); err != nil {
		t.Fatalf("chat content %q: %v", chat.Choices[0].Message.Content, err)
	}
	wantAssertion(t, srv, rec, "", echoFrom(t, md), identitytest.ChatCompletionsPath)

	// The SDK's API key never reached the first-party server.
	for _, r := range sent.resourceRequests() {
		if got := r.Header.Get("Authorization"); strings.Contains(got, sdkAPIKey) || !strings.HasPrefix(got, "AgentAssertion ") {
			t.Errorf("%s carried %.20q..., want an AgentAssertion", r.URL, got)
		}
	}
	if st := srv.Stats(); st.ThreadTaskRegistrations != 1 || st.ProcessTaskRegistrations != 1 || st.Rejections != 0 {
		t.Errorf("server stats %+v", st)
	}
}

func TestOpenAIGoFlagOffKeepsBearer(t *testing.T) {
	srv := newServer(t, identitytest.Options{AccessTokens: []string{accessToken}})
	hc, sent, _ := loginClient(t, srv, "acct-login")
	c := newOpenAIGo(hc, srv.URL())

	resp := newResponse(t, transport.WithThread(context.Background(), "thread-1"), c)
	want := identitytest.Echo{Mode: identitytest.ModeBearer, AccountID: "acct-login", Path: identitytest.ResponsesPath}
	if got := echoFrom(t, resp.Metadata); got != want {
		t.Errorf("server verified %+v, want %+v", got, want)
	}
	reqs := sent.requests() // all of them: flag off must register nothing
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+accessToken || reqs[0].Header.Get("ChatGPT-Account-ID") != "acct-login" {
		t.Errorf("flag off sent %d requests, want one with the login's Bearer and routing", len(reqs))
	}
	if st := srv.Stats(); st.AgentRegistrations != 0 || st.ThreadTaskRegistrations != 0 || st.ProcessTaskRegistrations != 0 {
		t.Errorf("flag off registered something: %+v", st)
	}
}

func TestOpenAIGoRetryIsResigned(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	rec := newRecord(t, srv, false)
	hc, sent, _ := agentClient(t, srv, rec)
	// Retry-After: 0 keeps the SDK's backoff out of the test's run time;
	// the retry is still the SDK's own.
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusInternalServerError, RetryAfter: "0", Times: 1})
	c := newOpenAIGo(hc, srv.URL(), option.WithMaxRetries(2))

	resp := newResponse(t, transport.WithThread(context.Background(), "thread-1"), c)
	wantAssertion(t, srv, rec, "thread-1", echoFrom(t, resp.Metadata), identitytest.ResponsesPath)
	task := taskFor(t, srv, rec.AgentRuntimeID, "thread-1")

	reqs := sent.resourceRequests()
	var attempts []sentRequest
	for _, r := range reqs {
		if strings.HasSuffix(r.URL, identitytest.ResponsesPath) {
			attempts = append(attempts, r)
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempts reached the network, want 2 (the 500 and the SDK's retry)", len(attempts))
	}
	for i, a := range attempts {
		if got := a.Header.Get("X-Stainless-Retry-Count"); got != []string{"0", "1"}[i] {
			t.Errorf("attempt %d has X-Stainless-Retry-Count %q", i, got)
		}
		// Each attempt went through RoundTrip and was signed on the task;
		// within one second the bytes may be the same (an assertion is
		// signed at most once per task per second).
		verifyAssertion(t, rec, a.Header.Get("Authorization"), task.TaskID)
	}
	seen := srv.Requests()
	if len(seen) != 1 || seen[0].Status != http.StatusOK || seen[0].Echo.Mode != identitytest.ModeAssertion ||
		seen[0].Header.Get("Authorization") != attempts[1].Header.Get("Authorization") {
		t.Errorf("server saw %v, want one verified success", seen)
	}
	if st := srv.Stats(); st.FaultsServed != 1 || st.ThreadTaskRegistrations != 1 {
		t.Errorf("server stats %+v", st)
	}
}

func TestOpenAIGoKeyReplacedOnlyForFirstParty(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	other := newServer(t, identitytest.Options{APIKeys: []string{sdkAPIKey}})
	rec := newRecord(t, srv, false)
	hc, _, _ := agentClient(t, srv, rec)

	resp := newResponse(t, context.Background(), newOpenAIGo(hc, srv.URL()))
	wantAssertion(t, srv, rec, "", echoFrom(t, resp.Metadata), identitytest.ResponsesPath)

	// other is not allow-listed: the SDK's own key goes through untouched,
	// even with a thread in the context, and nothing is registered for it.
	before := srv.Stats()
	resp = newResponse(t, transport.WithThread(context.Background(), "thread-x"), newOpenAIGo(hc, other.URL()))
	if got := echoFrom(t, resp.Metadata); got.Mode != identitytest.ModeBearer {
		t.Errorf("other server verified %+v, want the SDK's Bearer key", got)
	}
	seen := other.Requests()
	if len(seen) != 1 || seen[0].Header.Get("Authorization") != "Bearer "+sdkAPIKey || seen[0].Header.Get("ChatGPT-Account-ID") != "" {
		t.Errorf("other server saw %v, want the SDK's own key and no routing", seen)
	}
	if after := srv.Stats(); after.ThreadTaskRegistrations != before.ThreadTaskRegistrations {
		t.Errorf("a third-party call registered a thread task")
	}
}
