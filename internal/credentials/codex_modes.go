package credentials

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Codex auth modes whose credential is not for the ChatGPT backend: a
// Bedrock API key (or AWS access keys) is sent to Amazon Bedrock, and
// "headers" is auth a host provides per request, never loaded from a file.
const (
	AuthModeBedrockAPIKey     = "bedrockApiKey"
	AuthModeBedrockAccessKeys = "bedrockAccessKeys"
	AuthModeHeaders           = "headers"
)

// keyBedrockAPIKey is the auth.json member of a Bedrock API key login
// (kept verbatim, never read: it is not a ChatGPT credential).
const keyBedrockAPIKey = "bedrock_api_key"

// ErrNotChatGPTLogin is wrapped by the *[LoadError] of [Load] when
// auth.json holds a real Codex login that cannot call the ChatGPT backend:
// auth_mode "bedrockApiKey" or "bedrockAccessKeys" (or, without auth_mode,
// a bedrock_api_key member), or "headers". Test it with errors.Is; a
// caller that may run without a credential (agentauth's
// AllowNoCredential) passes requests through unauthenticated instead.
var ErrNotChatGPTLogin = errors.New("this Codex login cannot call the ChatGPT backend")

// notChatGPTLogin is the error of a login in mode.
func notChatGPTLogin(mode string) error {
	return &LoadError{Field: keyAuthMode, Err: fmt.Errorf("%w (auth_mode %q): log in to Codex with ChatGPT or an API key", ErrNotChatGPTLogin, mode)}
}

// hasBedrockKey reports whether af holds a non-null bedrock_api_key.
func hasBedrockKey(af *AuthFile) bool {
	v, ok := af.Extra(keyBedrockAPIKey)
	return ok && jsonKind(v) != "null"
}

var agentIdentityEnvWarning sync.Once

// warnAgentIdentityEnv logs, once per process, that CODEX_AGENT_IDENTITY
// is no longer read by the Codex CLI.
func warnAgentIdentityEnv() {
	agentIdentityEnvWarning.Do(func() {
		slog.Default().Warn("agentauth: " + EnvCodexAgentIdentity + " is deprecated (the Codex CLI no longer reads it); put the Agent Identity JWT in " + EnvCodexAccessToken + " instead")
	})
}
