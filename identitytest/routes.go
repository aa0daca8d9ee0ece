package identitytest

// Route names a group of endpoints that faults are injected into.
type Route string

// The routes faults can be injected into.
const (
	// RouteAgentRegister is POST /v1/agent/register.
	RouteAgentRegister Route = "agent_register"
	// RouteTaskRegister is POST /v1/agent/{rid}/task/register.
	RouteTaskRegister Route = "task_register"
	// RouteResource is every protected resource (any other path under /v1/).
	RouteResource Route = "resource"
	// RouteJWKS is GET .../agent-identities/jwks.
	RouteJWKS Route = "jwks"
	// RouteToken is POST .../oauth/token, the ChatGPT token endpoint, with
	// every grant it serves.
	RouteToken Route = "token"
)

func (r Route) valid() bool {
	switch r {
	case RouteAgentRegister, RouteTaskRegister, RouteResource, RouteJWKS, RouteToken:
		return true
	}
	return false
}

// Paths a client may need to name. Accepted POST requests to ResponsesPath
// and ChatCompletionsPath are answered in the shape of the OpenAI API, so that
// SDK clients (openai-go, go-openai) can parse the answer.
const (
	// ResponsesPath answers with a Responses API object ("object":
	// "response") that is also a superset of [Echo].
	ResponsesPath = "/v1/responses"
	// ChatCompletionsPath answers with a chat completion ("object":
	// "chat.completion") that is also a superset of [Echo].
	ChatCompletionsPath = "/v1/chat/completions"
	// TokenPath is the path of the token endpoint; [Server.TokenURL] is the
	// full URL, to pass as CODEX_REFRESH_TOKEN_URL_OVERRIDE.
	TokenPath = "/oauth/token"
)
