package credentials

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeAuthJSON(t *testing.T, doc string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, AuthFileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// Without auth_mode, the mode is resolved in Codex's order: personal
// access token, Bedrock key, non-null OPENAI_API_KEY, ChatGPT tokens.
// Bedrock and "headers" logins say plainly that they cannot call the
// ChatGPT backend, never "unknown auth_mode".
func TestAuthModeResolvedInCodexOrder(t *testing.T) {
	const tokens = `"tokens":{"id_token":"","access_token":"at-SECRET-tok","refresh_token":"rt-SECRET","account_id":"acct-1"}`
	const bedrock = `"bedrock_api_key":{"api_key":"SECRET-bedrock","region":"us-east-1"}`
	for _, tc := range []struct {
		name string
		doc  string
		kind Kind
		pat  bool
		err  error
	}{
		{"pat beats everything", `{"personal_access_token":"at-SECRET-pat","OPENAI_API_KEY":"sk-SECRET",` + bedrock + `,` + tokens + `}`, KindAPIKey, true, nil},
		{"bedrock beats key and tokens", `{"OPENAI_API_KEY":"sk-SECRET",` + bedrock + `,` + tokens + `}`, KindNone, false, ErrNotChatGPTLogin},
		{"key beats tokens", `{"OPENAI_API_KEY":"sk-SECRET",` + tokens + `}`, KindAPIKey, false, nil},
		{"null key: tokens", `{"OPENAI_API_KEY":null,` + tokens + `}`, KindChatGPT, false, nil},
		{"null bedrock: tokens", `{"OPENAI_API_KEY":null,"bedrock_api_key":null,` + tokens + `}`, KindChatGPT, false, nil},
		{"mode bedrockApiKey", `{"auth_mode":"bedrockApiKey","OPENAI_API_KEY":null,` + bedrock + `}`, KindNone, false, ErrNotChatGPTLogin},
		{"mode bedrockAccessKeys", `{"auth_mode":"bedrockAccessKeys","OPENAI_API_KEY":null}`, KindNone, false, ErrNotChatGPTLogin},
		{"mode headers", `{"auth_mode":"headers","OPENAI_API_KEY":null}`, KindNone, false, ErrNotChatGPTLogin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(LoadOptions{CodexHome: writeAuthJSON(t, tc.doc), Getenv: fakeEnv(nil)})
			if tc.err != nil {
				var le *LoadError
				if !errors.Is(err, tc.err) || errors.Is(err, ErrUnknownAuthMode) || !errors.As(err, &le) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if s := err.Error(); strings.Contains(s, "SECRET") {
					t.Fatalf("error leaks a secret: %s", s)
				}
				return
			}
			if err != nil || c.Kind != tc.kind || c.PersonalAccessToken != tc.pat {
				t.Fatalf("Load = %v, %v; want kind %v pat %v", c, err, tc.kind, tc.pat)
			}
		})
	}
}
