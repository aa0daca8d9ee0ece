package identity

import "testing"

func TestAuthAPIBaseFor(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", DefaultAuthAPIBase},
		{"https://chatgpt.com/backend-api", DefaultAuthAPIBase},
		{"https://chatgpt.com/backend-api/", DefaultAuthAPIBase},
		{"  https://chatgpt.com/backend-api/codex  ", DefaultAuthAPIBase},
		{"https://chatgpt.com", DefaultAuthAPIBase},
		{"https://chatgpt.com/codex", DefaultAuthAPIBase},
		{"https://CHATGPT.com:443/backend-api", DefaultAuthAPIBase},
		{"https://chat.openai.com/backend-api", DefaultAuthAPIBase},
		{"https://chatgpt-staging.com/backend-api", stagingAuthAPIBase},
		{"https://chatgpt-staging.com", stagingAuthAPIBase},
		{"https://auth.openai.com", "https://auth.openai.com/api/accounts"},
		{"https://auth.api.openai.org/", "https://auth.api.openai.org/api/accounts"},
		{"https://auth.openai.com/api/accounts", "https://auth.openai.com/api/accounts"},
		// Loopback and other bases are used as given (trimmed).
		{"http://127.0.0.1:8787", "http://127.0.0.1:8787"},
		{"http://localhost:8787/backend-api/", "http://localhost:8787/backend-api"},
		{"http://[::1]:9000/api/accounts", "http://[::1]:9000/api/accounts"},
		{"http://chatgpt.com/backend-api", "http://chatgpt.com/backend-api"},
		{"https://chatgpt.com:8443/backend-api", "https://chatgpt.com:8443/backend-api"},
		{"https://evil-chatgpt.com/backend-api", "https://evil-chatgpt.com/backend-api"},
		{"https://chatgpt.com.evil.example/backend-api", "https://chatgpt.com.evil.example/backend-api"},
		{"https://proxy.example.com/chatgpt", "https://proxy.example.com/chatgpt"},
	}
	for _, tt := range tests {
		if got := authAPIBaseFor(tt.in); got != tt.want {
			t.Errorf("authAPIBaseFor(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsLoopbackBase(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"http://127.0.0.1:8787", true},
		{"http://127.5.0.1", true},
		{"http://localhost:1/x", true},
		{"https://[::1]:443/", true},
		{"http://10.0.0.1", false},
		{"https://chatgpt.com", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:80", false},
		{"http://localhost.example.com", false},
	}
	for _, tt := range tests {
		if got := IsLoopbackBase(tt.in); got != tt.want {
			t.Errorf("IsLoopbackBase(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestResolveBaseURLs(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		name   string
		getenv func(string) string
		base   string
		want   BaseURLs
	}{
		{"defaults", env(), "",
			BaseURLs{DefaultChatGPTBase, DefaultAuthAPIBase, DefaultChatGPTBase}},
		{"staging", env(), "https://chatgpt-staging.com/backend-api/",
			BaseURLs{"https://chatgpt-staging.com/backend-api", stagingAuthAPIBase, "https://chatgpt-staging.com/backend-api"}},
		{"loopback used as given", env(), "http://127.0.0.1:8787",
			BaseURLs{"http://127.0.0.1:8787", "http://127.0.0.1:8787", "http://127.0.0.1:8787"}},
		{"env overrides trimmed", env(EnvAuthAPIBase, "  http://127.0.0.1:1/api/accounts//  ", EnvJWKSBase, "https://jwks.example/"), "",
			BaseURLs{DefaultChatGPTBase, "http://127.0.0.1:1/api/accounts", "https://jwks.example"}},
		{"empty and blank overrides ignored", env(EnvAuthAPIBase, "", EnvJWKSBase, "  / "), "https://chatgpt.com/backend-api",
			BaseURLs{DefaultChatGPTBase, DefaultAuthAPIBase, DefaultChatGPTBase}},
	}
	for _, tt := range tests {
		if got := ResolveBaseURLs(tt.getenv, tt.base); got != tt.want {
			t.Errorf("%s: ResolveBaseURLs = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	t.Setenv(EnvAuthAPIBase, "http://127.0.0.1:2/")
	if got := ResolveBaseURLs(nil, "").AuthAPI; got != "http://127.0.0.1:2" {
		t.Errorf("nil getenv does not read the process environment: AuthAPI = %q", got)
	}
}

func TestJWKSURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://chatgpt.com/backend-api", "https://chatgpt.com/backend-api/wham/agent-identities/jwks"},
		{"https://chatgpt.com/backend-api/", "https://chatgpt.com/backend-api/wham/agent-identities/jwks"},
		{"https://chatgpt.com/backend-api/codex", "https://chatgpt.com/backend-api/codex/wham/agent-identities/jwks"},
		{"https://jwks.example", "https://jwks.example/agent-identities/jwks"},
		{"http://127.0.0.1:8787/api/codex//", "http://127.0.0.1:8787/api/codex/agent-identities/jwks"},
	}
	for _, tt := range tests {
		if got := JWKSURL(tt.in); got != tt.want {
			t.Errorf("JWKSURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// CODEX_AUTHAPI_BASE_URL moves only the personal access token lookup;
// registration follows CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL alone.
func TestAuthAPIEnvNamesSplitAsInCodex(t *testing.T) {
	env := func(k, v string) func(string) string {
		return func(name string) string {
			if name == k {
				return v
			}
			return ""
		}
	}
	getenv := env(EnvCodexAuthAPIBase, "http://127.0.0.1:7/whoami-base/")
	if got := ResolveBaseURLs(getenv, "").AuthAPI; got != DefaultAuthAPIBase {
		t.Errorf("registration base = %q: CODEX_AUTHAPI_BASE_URL must not move it", got)
	}
	if got := PersonalAccessTokenAuthAPIBase(getenv, ""); got != "http://127.0.0.1:7/whoami-base" {
		t.Errorf("whoami base = %q", got)
	}
	getenv = env(EnvAuthAPIBase, "http://127.0.0.1:8/reg")
	if got := ResolveBaseURLs(getenv, "").AuthAPI; got != "http://127.0.0.1:8/reg" {
		t.Errorf("registration base = %q", got)
	}
	if got := PersonalAccessTokenAuthAPIBase(getenv, ""); got != DefaultAuthAPIBase {
		t.Errorf("whoami base = %q: the registration override must not move it", got)
	}
}
