package identitytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// openAIMembers are the members an OpenAI-shaped answer adds to an Echo.
var openAIMembers = map[string][]string{
	"response": {"id", "object", "created_at", "status", "model", "output", "usage", "metadata", "error",
		"incomplete_details", "instructions", "parallel_tool_calls", "temperature", "top_p", "tool_choice", "tools"},
	"chat.completion": {"id", "object", "created", "model", "choices", "usage", "metadata"},
}

// withoutOpenAIMembers returns body without the members that an
// OpenAI-shaped answer adds (all of which must be present), so that what
// remains can be decoded strictly as an Echo. Other bodies are returned
// unchanged.
func withoutOpenAIMembers(t *testing.T, body []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	var object string
	_ = json.Unmarshal(m["object"], &object)
	keys, ok := openAIMembers[object]
	if !ok {
		return body
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s answer lacks %q: %s", object, k, body)
		}
		delete(m, k)
	}
	return mustJSON(t, m)
}

// strictDecode decodes body into v, rejecting unknown members.
func strictDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

// responsesWire mirrors the documented Responses API object that
// /v1/responses answers with, plus the Echo members.
type responsesWire struct {
	Echo
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	Status    string `json:"status"`
	Model     string `json:"model"`
	Output    []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Role    string `json:"role"`
		Content []struct {
			Type        string `json:"type"`
			Text        string `json:"text"`
			Annotations []any  `json:"annotations"`
		} `json:"content"`
	} `json:"output"`
	Usage struct {
		InputTokens        int `json:"input_tokens"`
		InputTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokens        int `json:"output_tokens"`
		OutputTokensDetails struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
		TotalTokens int `json:"total_tokens"`
	} `json:"usage"`
	Metadata          map[string]string `json:"metadata"`
	Error             any               `json:"error"`
	IncompleteDetails any               `json:"incomplete_details"`
	Instructions      any               `json:"instructions"`
	ParallelToolCalls bool              `json:"parallel_tool_calls"`
	Temperature       float64           `json:"temperature"`
	TopP              float64           `json:"top_p"`
	ToolChoice        string            `json:"tool_choice"`
	Tools             []any             `json:"tools"`
}

// chatWire mirrors the chat completion that /v1/chat/completions answers
// with, plus the Echo members.
type chatWire struct {
	Echo
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
			Refusal any    `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
		Logprobs     any    `json:"logprobs"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	Metadata map[string]string `json:"metadata"`
}

// textMetadata decodes the assistant text, which is the metadata as JSON.
func textMetadata(t *testing.T, text string) map[string]string {
	t.Helper()
	var md map[string]string
	if err := json.Unmarshal([]byte(text), &md); err != nil {
		t.Fatalf("assistant text %q is not the metadata JSON: %v", text, err)
	}
	return md
}

func TestResponsesAnswerIsAResponsesObjectAndAnEcho(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	task := newTask(t, c, s, k, "agent-123", "thread-1", t0)
	hdr := map[string]string{
		"Authorization":      sign(t, k, "agent-123", task, t0),
		"ChatGPT-Account-ID": "acct-9",
		"X-OpenAI-Fedramp":   "true",
	}
	want := Echo{Mode: ModeAssertion, AgentRuntimeID: "agent-123", TaskID: task, ExternalTaskRef: "thread-1",
		AccountID: "acct-9", FedRAMP: true, Path: ResponsesPath}
	wantMD := map[string]string{"mode": "assertion", "agent_runtime_id": "agent-123", "task_id": task,
		"external_task_ref": "thread-1", "account_id": "acct-9", "fedramp": "true", "path": ResponsesPath}

	for _, tc := range []struct{ body, model string }{
		{`{"model":"gpt-test","input":"hi"}`, "gpt-test"},
		{`{"input":"hi"}`, defaultModel},
		{`not json`, defaultModel},
		{`{"model":"` + strings.Repeat("m", maxModelLen+1) + `"}`, defaultModel},
	} {
		r := do(t, c, http.MethodPost, s.URL()+ResponsesPath, hdr, []byte(tc.body))
		if r.status != http.StatusOK {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		var got responsesWire
		strictDecode(t, r.body, &got)
		if diff := cmp.Diff(want, got.Echo); diff != "" {
			t.Errorf("echo members (-want +got):\n%s", diff)
		}
		if !strings.HasPrefix(got.ID, "resp_") || got.Object != "response" || got.Status != "completed" ||
			got.CreatedAt != t0.Unix() || got.Model != tc.model {
			t.Errorf("body %q: header fields %q %q %q %d %q", tc.body, got.ID, got.Object, got.Status, got.CreatedAt, got.Model)
		}
		if len(got.Output) != 1 || got.Output[0].Type != "message" || got.Output[0].Role != "assistant" ||
			got.Output[0].Status != "completed" || !strings.HasPrefix(got.Output[0].ID, "msg_") ||
			len(got.Output[0].Content) != 1 || got.Output[0].Content[0].Type != "output_text" ||
			got.Output[0].Content[0].Annotations == nil {
			t.Fatalf("output %+v", got.Output)
		}
		if diff := cmp.Diff(wantMD, textMetadata(t, got.Output[0].Content[0].Text)); diff != "" {
			t.Errorf("output_text (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantMD, got.Metadata); diff != "" {
			t.Errorf("metadata (-want +got):\n%s", diff)
		}
		if u := got.Usage; u.TotalTokens != u.InputTokens+u.OutputTokens || u.TotalTokens == 0 {
			t.Errorf("usage %+v", u)
		}
		if got.Error != nil || got.Tools == nil {
			t.Errorf("error %v tools %v", got.Error, got.Tools)
		}
		// Tests written before the superset still decode the body strictly
		// as an Echo once the documented members are set aside.
		if diff := cmp.Diff(want, decodeEcho(t, r)); diff != "" {
			t.Errorf("decodeEcho (-want +got):\n%s", diff)
		}
	}
}

func TestChatCompletionsAnswerIsAChatCompletionAndAnEcho(t *testing.T) {
	s, _ := newTestServer(t, Options{APIKeys: []string{"sk-test"}})
	c := newClient(t)
	r := do(t, c, http.MethodPost, s.URL()+ChatCompletionsPath, map[string]string{"Authorization": "Bearer sk-test"},
		[]byte(`{"model":"gpt-chat","messages":[{"role":"user","content":"hi"}]}`))
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var got chatWire
	strictDecode(t, r.body, &got)
	want := Echo{Mode: ModeBearer, Path: ChatCompletionsPath}
	if diff := cmp.Diff(want, got.Echo); diff != "" {
		t.Errorf("echo members (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.ID, "chatcmpl-") || got.Object != "chat.completion" || got.Created != t0.Unix() || got.Model != "gpt-chat" {
		t.Errorf("header fields %q %q %d %q", got.ID, got.Object, got.Created, got.Model)
	}
	if len(got.Choices) != 1 || got.Choices[0].Index != 0 || got.Choices[0].Message.Role != "assistant" ||
		got.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices %+v", got.Choices)
	}
	if diff := cmp.Diff(want.metadata(), textMetadata(t, got.Choices[0].Message.Content)); diff != "" {
		t.Errorf("message content (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.metadata(), got.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if u := got.Usage; u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.TotalTokens == 0 {
		t.Errorf("usage %+v", u)
	}
	if strings.Contains(string(r.body), "sk-test") {
		t.Error("answer contains the API key")
	}
	if diff := cmp.Diff(want, decodeEcho(t, r)); diff != "" {
		t.Errorf("decodeEcho (-want +got):\n%s", diff)
	}
}

func TestOtherResourcesKeepThePlainEcho(t *testing.T) {
	s, _ := newTestServer(t, Options{APIKeys: []string{"sk-test"}})
	c := newClient(t)
	auth := map[string]string{"Authorization": "Bearer sk-test"}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, ResponsesPath},
		{http.MethodPost, "/v1/responses/resp_1/cancel"},
		{http.MethodPost, "/v1/models"},
		{http.MethodGet, ChatCompletionsPath},
	} {
		r := do(t, c, tc.method, s.URL()+tc.path, auth, nil)
		var e Echo
		strictDecode(t, r.body, &e) // no OpenAI members at all
		if r.status != http.StatusOK || e.Mode != ModeBearer || e.Path != tc.path {
			t.Errorf("%s %s: %d %+v", tc.method, tc.path, r.status, e)
		}
	}
	// Rejections keep their fixed {"error": reason} body.
	r := do(t, c, http.MethodPost, s.URL()+ResponsesPath, nil, []byte(`{"model":"m"}`))
	if r.status != http.StatusUnauthorized || errorReason(t, r) != "missing_authorization" || strings.Contains(string(r.body), "response") {
		t.Errorf("unauthenticated: %d %s", r.status, r.body)
	}
}

func TestEchoMetadataRoundTrip(t *testing.T) {
	for _, e := range []Echo{
		{Mode: ModeAssertion, AgentRuntimeID: "rt", TaskID: "task", ExternalTaskRef: "thread-1", AccountID: "acct", FedRAMP: true, Path: "/v1/responses"},
		{Mode: ModeNone, Path: "/v1/x"},
	} {
		got, err := EchoFromMetadata(e.metadata())
		if err != nil || got != e {
			t.Errorf("EchoFromMetadata(%v.metadata()) = %+v, %v", e, got, err)
		}
	}
	for _, md := range []map[string]string{
		nil,
		{"mode": "", "fedramp": "false"},
		{"mode": "bearer"},
		{"mode": "bearer", "fedramp": "yes"},
	} {
		if _, err := EchoFromMetadata(md); err == nil {
			t.Errorf("EchoFromMetadata(%v) accepted", md)
		}
	}
}

// upgradeRequest is a hand-written WebSocket-style upgrade: identitytest
// imports no WebSocket library, and the hook under test speaks a raw echo
// protocol after the 101.
func upgradeRequest(t *testing.T, url, auth string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "keep-alive, Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return req
}

// rawEchoHook switches protocols by hand and echoes bytes until the
// client or the server ends the exchange; it reports each verified echo.
func rawEchoHook(seen chan<- Echo) func(http.ResponseWriter, *http.Request, Echo) {
	return func(w http.ResponseWriter, r *http.Request, echo Echo) {
		seen <- echo
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-r.Context().Done():
				conn.Close() // unblocks the copy below when the server closes
			case <-stop:
			}
		}()
		_, _ = io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw.Reader)
	}
}

func TestWebSocketHookGetsOnlyVerifiedUpgrades(t *testing.T) {
	seen := make(chan Echo, 4)
	s, _ := newTestServer(t, Options{APIKeys: []string{"sk-test"}, WebSocket: rawEchoHook(seen)})
	// No Client.Timeout: it wraps a 101 body so that it is no longer
	// writable, which is also why WebSocket clients must not set one.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	// Unauthenticated and wrongly authenticated upgrades are refused before
	// the hook runs.
	for _, auth := range []string{"", "Bearer nope"} {
		resp, err := c.Do(upgradeRequest(t, s.URL()+ResponsesPath, auth))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("auth %q: status %d, want 401", auth, resp.StatusCode)
		}
	}

	resp, err := c.Do(upgradeRequest(t, s.URL()+ResponsesPath, "Bearer sk-test"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body is %T, not writable", resp.Body)
	}
	defer rwc.Close()
	// Closing the body ends a read that would otherwise wait forever.
	watchdog := time.AfterFunc(5*time.Second, func() { rwc.Close() })
	defer watchdog.Stop()
	if _, err := io.WriteString(rwc, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(rwc).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echoed %q, %v", line, err)
	}
	select {
	case e := <-seen:
		if e != (Echo{Mode: ModeBearer, Path: ResponsesPath}) {
			t.Errorf("hook got %+v", e)
		}
	default:
		t.Fatal("hook did not run")
	}
	if len(seen) != 0 {
		t.Errorf("hook ran %d more times", len(seen))
	}

	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Status != 401 || reqs[1].Status != 401 || reqs[2].Status != http.StatusSwitchingProtocols ||
		reqs[2].Echo.Mode != ModeBearer {
		t.Errorf("Requests() = %v", reqs)
	}
	if st := s.Stats(); st.RequestsByMode[ModeBearer] != 1 || st.Rejections != 2 {
		t.Errorf("stats %+v", st)
	}

	// Close ends the hook even though its client is still connected.
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a WebSocket hook was running")
	}
}

func TestUpgradeWithoutHookGetsThePlainEcho(t *testing.T) {
	s, _ := newTestServer(t, Options{APIKeys: []string{"sk-test"}})
	c := newClient(t)
	resp, err := c.Do(upgradeRequest(t, s.URL()+ResponsesPath, "Bearer sk-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e Echo
	strictDecode(t, b, &e)
	if resp.StatusCode != http.StatusOK || e.Mode != ModeBearer {
		t.Errorf("status %d echo %+v", resp.StatusCode, e)
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	for _, tc := range []struct {
		method, conn, upgrade string
		want                  bool
	}{
		{http.MethodGet, "Upgrade", "websocket", true},
		{http.MethodGet, "keep-alive, upgrade", "WebSocket", true},
		{http.MethodPost, "Upgrade", "websocket", false},
		{http.MethodGet, "keep-alive", "websocket", false},
		{http.MethodGet, "Upgrade", "h2c", false},
		{http.MethodGet, "Upgrade", "", false},
	} {
		r, _ := http.NewRequest(tc.method, "http://127.0.0.1/v1/responses", nil)
		r.Header.Set("Connection", tc.conn)
		if tc.upgrade != "" {
			r.Header.Set("Upgrade", tc.upgrade)
		}
		if got := isWebSocketUpgrade(r); got != tc.want {
			t.Errorf("%s Connection %q Upgrade %q: %v, want %v", tc.method, tc.conn, tc.upgrade, got, tc.want)
		}
	}
}
