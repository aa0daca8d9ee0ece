package identity

import "testing"

// Current Codex reads CODEX_AUTHAPI_BASE_URL; the older name counts only
// when it is empty.
func TestResolveBaseURLsPrefersCodexAuthAPIEnv(t *testing.T) {
	env := map[string]string{EnvCodexAuthAPIBase: " https://new.example/api/ ", EnvAuthAPIBase: "https://old.example"}
	getenv := func(k string) string { return env[k] }
	if got := ResolveBaseURLs(getenv, "").AuthAPI; got != "https://new.example/api" {
		t.Fatalf("AuthAPI = %q, want CODEX_AUTHAPI_BASE_URL", got)
	}
	env[EnvCodexAuthAPIBase] = "  "
	if got := ResolveBaseURLs(getenv, "").AuthAPI; got != "https://old.example" {
		t.Fatalf("AuthAPI = %q, want the older variable", got)
	}
}
