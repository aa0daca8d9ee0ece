package identitytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// defaultModel is the model an OpenAI-shaped answer reports when the request
// body names none.
const defaultModel = "identitytest"

// maxModelLen bounds the echoed model name: it is request data, and an
// answer should not grow with whatever a client sends.
const maxModelLen = 256

// Metadata keys of [Echo.Metadata].
const (
	metaMode            = "mode"
	metaAgentRuntimeID  = "agent_runtime_id"
	metaTaskID          = "task_id"
	metaExternalTaskRef = "external_task_ref"
	metaAccountID       = "account_id"
	metaFedRAMP         = "fedramp"
	metaPath            = "path"
)

// answerSeq numbers OpenAI-shaped answers process-wide. A counter rather
// than Options.Rand, so that answering a resource never shifts the ids a
// test with a deterministic Rand expects for runtimes and tasks.
var answerSeq atomic.Uint64

// metadata returns e as the string map an OpenAI-shaped answer carries in
// its "metadata" member (the Responses API allows only string values):
// every key of [Echo]'s JSON form, with fedramp as "true" or "false". It
// never holds a credential, because Echo does not.
func (e Echo) metadata() map[string]string {
	return map[string]string{
		metaMode:            e.Mode,
		metaAgentRuntimeID:  e.AgentRuntimeID,
		metaTaskID:          e.TaskID,
		metaExternalTaskRef: e.ExternalTaskRef,
		metaAccountID:       e.AccountID,
		metaFedRAMP:         strconv.FormatBool(e.FedRAMP),
		metaPath:            e.Path,
	}
}

// EchoFromMetadata reads an [Echo] back from the "metadata" member of an
// OpenAI-shaped answer (POST [ResponsesPath] or [ChatCompletionsPath]),
// which holds every key of Echo's JSON form as a string, fedramp as "true"
// or "false": for tests that read what the server verified through an
// SDK's own response types (for example responses.Response.Metadata of
// openai-go). It fails when mode is missing or fedramp is not "true" or
// "false"; the other keys default to "".
func EchoFromMetadata(md map[string]string) (Echo, error) {
	mode, ok := md[metaMode]
	if !ok || mode == "" {
		return Echo{}, errors.New("identitytest: metadata has no mode")
	}
	e := Echo{
		Mode:            mode,
		AgentRuntimeID:  md[metaAgentRuntimeID],
		TaskID:          md[metaTaskID],
		ExternalTaskRef: md[metaExternalTaskRef],
		AccountID:       md[metaAccountID],
		Path:            md[metaPath],
	}
	switch md[metaFedRAMP] {
	case "true":
		e.FedRAMP = true
	case "false":
	default:
		return Echo{}, errors.New(`identitytest: metadata fedramp is not "true" or "false"`)
	}
	return e, nil
}

// responsesAnswer is a minimal Responses API object (one assistant message
// whose output_text is the metadata as JSON) with the Echo members on top,
// so that both SDKs and tests decoding an Echo can read it.
type responsesAnswer struct {
	Echo
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	CreatedAt         int64             `json:"created_at"`
	Status            string            `json:"status"`
	Model             string            `json:"model"`
	Output            []responsesItem   `json:"output"`
	Usage             responsesUsage    `json:"usage"`
	Metadata          map[string]string `json:"metadata"`
	Error             *struct{}         `json:"error"`
	IncompleteDetails *struct{}         `json:"incomplete_details"`
	Instructions      *string           `json:"instructions"`
	ParallelToolCalls bool              `json:"parallel_tool_calls"`
	Temperature       float64           `json:"temperature"`
	TopP              float64           `json:"top_p"`
	ToolChoice        string            `json:"tool_choice"`
	Tools             []struct{}        `json:"tools"`
}

type responsesItem struct {
	ID      string             `json:"id"`
	Type    string             `json:"type"`
	Status  string             `json:"status"`
	Role    string             `json:"role"`
	Content []responsesContent `json:"content"`
}

type responsesContent struct {
	Type        string     `json:"type"`
	Text        string     `json:"text"`
	Annotations []struct{} `json:"annotations"`
}

type responsesUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// chatAnswer is a minimal chat completion with the Echo members on top.
type chatAnswer struct {
	Echo
	ID       string            `json:"id"`
	Object   string            `json:"object"`
	Created  int64             `json:"created"`
	Model    string            `json:"model"`
	Choices  []chatChoice      `json:"choices"`
	Usage    chatUsage         `json:"usage"`
	Metadata map[string]string `json:"metadata"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	FinishReason string      `json:"finish_reason"`
	Logprobs     *struct{}   `json:"logprobs"`
}

type chatMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// writeAnswer writes the 200 answer of an accepted resource request: an
// OpenAI-shaped superset of echo for POST ResponsesPath and
// ChatCompletionsPath, the plain Echo elsewhere.
func (s *Server) writeAnswer(w http.ResponseWriter, r *http.Request, body []byte, echo Echo) {
	if r.Method != http.MethodPost || (r.URL.Path != ResponsesPath && r.URL.Path != ChatCompletionsPath) {
		writeJSON(w, http.StatusOK, echo)
		return
	}
	md := echo.metadata()
	text, _ := json.Marshal(md) // a map of strings always marshals
	seq := fmt.Sprintf("%016x", answerSeq.Add(1))
	created := s.now().Unix()
	model := requestModel(body)
	if r.URL.Path == ChatCompletionsPath {
		writeJSON(w, http.StatusOK, chatAnswer{
			Echo:    echo,
			ID:      "chatcmpl-" + seq,
			Object:  "chat.completion",
			Created: created,
			Model:   model,
			Choices: []chatChoice{{
				Message:      chatMessage{Role: "assistant", Content: string(text)},
				FinishReason: "stop",
			}},
			Usage:    chatUsage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2},
			Metadata: md,
		})
		return
	}
	a := responsesAnswer{
		Echo:      echo,
		ID:        "resp_" + seq,
		Object:    "response",
		CreatedAt: created,
		Status:    "completed",
		Model:     model,
		Output: []responsesItem{{
			ID:      "msg_" + seq,
			Type:    "message",
			Status:  "completed",
			Role:    "assistant",
			Content: []responsesContent{{Type: "output_text", Text: string(text), Annotations: []struct{}{}}},
		}},
		Metadata:          md,
		ParallelToolCalls: true,
		Temperature:       1,
		TopP:              1,
		ToolChoice:        "auto",
		Tools:             []struct{}{},
	}
	a.Usage.InputTokens, a.Usage.OutputTokens, a.Usage.TotalTokens = 1, 1, 2
	writeJSON(w, http.StatusOK, a)
}

// requestModel returns the "model" string of a JSON object body, or
// defaultModel when there is none (or it is empty or implausibly long).
func requestModel(body []byte) string {
	var req struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(body, &req) != nil || req.Model == "" || len(req.Model) > maxModelLen {
		return defaultModel
	}
	return req.Model
}

// isWebSocketUpgrade reports whether r asks to switch to the WebSocket
// protocol (RFC 6455 §4.1): GET with "Connection: upgrade" and
// "Upgrade: websocket" tokens, compared case-insensitively.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveWebSocket hands a verified upgrade request to Options.WebSocket.
// Its context also ends when the Server closes: net/http forgets a hijacked
// connection, so this is how Close reaches a WebSocket handler it waits for.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, echo Echo) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.webSocket(w, r.WithContext(ctx), echo)
}
