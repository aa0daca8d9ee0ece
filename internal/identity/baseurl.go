package identity

import (
	"net"
	"net/url"
	"os"
	"strings"
)

// Default service bases.
const (
	// DefaultChatGPTBase is the production ChatGPT backend.
	DefaultChatGPTBase = "https://chatgpt.com/backend-api"
	// DefaultAuthAPIBase is the production AuthAPI, where agents and tasks
	// are registered.
	DefaultAuthAPIBase = "https://auth.openai.com/api/accounts"
	// stagingAuthAPIBase is the AuthAPI paired with the chatgpt-staging.com
	// backend.
	stagingAuthAPIBase = "https://auth.api.openai.org/api/accounts"
)

// Environment variables that override the derived bases, as in the Codex
// CLI. Values are trimmed, trailing "/" removed, and ignored when empty.
const (
	// EnvCodexAuthAPIBase overrides only the AuthAPI base a personal
	// access token is looked up at (whoami), as in Codex. It never moves
	// agent or task registration, which send the ChatGPT access token.
	EnvCodexAuthAPIBase = "CODEX_AUTHAPI_BASE_URL"
	// EnvAuthAPIBase overrides the AuthAPI base of agent and task
	// registration.
	EnvAuthAPIBase = "CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL"
	EnvJWKSBase    = "CODEX_AGENT_IDENTITY_JWKS_BASE_URL"
)

// normalizeBase trims surrounding space and every trailing "/".
func normalizeBase(s string) string {
	return strings.TrimRight(strings.TrimSpace(s), "/")
}

// authAPIBaseFor returns the AuthAPI base that pairs with a ChatGPT backend
// base:
//   - https://chatgpt.com or https://chat.openai.com (any path, such as
//     /backend-api or /backend-api/codex) → [DefaultAuthAPIBase];
//   - https://chatgpt-staging.com (any path) → the staging AuthAPI;
//   - a bare https://auth.openai.com or https://auth.api.openai.org → that
//     origin + "/api/accounts";
//   - anything else, including loopback http bases of test servers → the
//     base itself, trimmed and without trailing "/".
//
// An empty base means [DefaultChatGPTBase].
func authAPIBaseFor(chatgptBase string) string {
	base := normalizeBase(chatgptBase)
	if base == "" {
		return DefaultAuthAPIBase
	}
	u, err := url.Parse(base)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return base
	}
	if p := u.Port(); p != "" && p != "443" {
		return base
	}
	switch strings.ToLower(u.Hostname()) {
	case "chatgpt.com", "chat.openai.com":
		return DefaultAuthAPIBase
	case "chatgpt-staging.com":
		return stagingAuthAPIBase
	case "auth.openai.com", "auth.api.openai.org":
		if u.Path == "" {
			return "https://" + strings.ToLower(u.Hostname()) + "/api/accounts"
		}
	}
	return base
}

// IsLoopbackBase reports whether base is an http or https URL whose host is
// localhost or a loopback IP address (development and test servers).
func IsLoopbackBase(base string) bool {
	u, err := url.Parse(normalizeBase(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BaseURLs are the service bases one client talks to. Every value is
// normalised (trimmed, no trailing "/").
type BaseURLs struct {
	// ChatGPT is the ChatGPT backend base (default [DefaultChatGPTBase]).
	ChatGPT string
	// AuthAPI is where agents and tasks are registered: [EnvAuthAPIBase]
	// if set, else the AuthAPI paired with ChatGPT (see
	// [ResolveBaseURLs]).
	AuthAPI string
	// JWKS is the base the JWKS is served under: [EnvJWKSBase] if set, else
	// ChatGPT. Pass it to [JWKSURL] for the key-set URL.
	JWKS string
}

// ResolveBaseURLs derives the service bases from a ChatGPT backend base
// (empty means [DefaultChatGPTBase]) and applies the [EnvAuthAPIBase]
// (registration) and [EnvJWKSBase] overrides read through getenv (nil
// means [os.Getenv]). [EnvCodexAuthAPIBase] does not apply here: see
// [PersonalAccessTokenAuthAPIBase].
// Override values are trimmed, lose trailing "/", and are ignored when
// empty.
func ResolveBaseURLs(getenv func(string) string, chatgptBase string) BaseURLs {
	if getenv == nil {
		getenv = os.Getenv
	}
	b := BaseURLs{ChatGPT: normalizeBase(chatgptBase)}
	if b.ChatGPT == "" {
		b.ChatGPT = DefaultChatGPTBase
	}
	b.AuthAPI = authAPIBaseFor(b.ChatGPT)
	if v := normalizeBase(getenv(EnvAuthAPIBase)); v != "" {
		b.AuthAPI = v
	}
	b.JWKS = b.ChatGPT
	if v := normalizeBase(getenv(EnvJWKSBase)); v != "" {
		b.JWKS = v
	}
	return b
}

// JWKSURL returns the Agent Identity JWKS URL under base (trailing "/"
// trimmed first): base + "/wham/agent-identities/jwks" when base contains
// "/backend-api", else base + "/agent-identities/jwks".
func JWKSURL(base string) string {
	base = normalizeBase(base)
	if strings.Contains(base, "/backend-api") {
		return base + "/wham/agent-identities/jwks"
	}
	return base + "/agent-identities/jwks"
}

// PersonalAccessTokenAuthAPIBase returns the AuthAPI base a personal
// access token's account is looked up at (whoami), as Codex chooses it:
// [EnvCodexAuthAPIBase] read through getenv (nil means [os.Getenv];
// trimmed, trailing "/" removed) if set, else the AuthAPI paired with the
// ChatGPT backend base. [EnvAuthAPIBase] does not move it.
func PersonalAccessTokenAuthAPIBase(getenv func(string) string, chatgptBase string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := normalizeBase(getenv(EnvCodexAuthAPIBase)); v != "" {
		return v
	}
	base := normalizeBase(chatgptBase)
	if base == "" {
		base = DefaultChatGPTBase
	}
	return authAPIBaseFor(base)
}
