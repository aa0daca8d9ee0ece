package credentials

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

func TestLoadFixtures(t *testing.T) {
	lastRefresh := time.Date(2026, 4, 20, 10, 11, 12, 123456000, time.UTC)
	for _, tc := range []struct {
		fixture string
		want    *Credentials // Source is checked separately
	}{
		{"apikey.json", &Credentials{Kind: KindAPIKey, APIKey: fixtureAPIKey}},
		{"apikey_legacy.json", &Credentials{Kind: KindAPIKey, APIKey: fixtureAPIKey}},
		{"chatgpt.json", &Credentials{Kind: KindChatGPT, ChatGPT: &ChatGPTLogin{
			AccessToken: fixtureAccessToken, RefreshToken: fixtureRefreshToken,
			AccountID: "acct-claim-123", FedRAMP: true, LastRefresh: lastRefresh,
		}}},
		{"chatgpt_account_override.json", &Credentials{Kind: KindChatGPT, ChatGPT: &ChatGPTLogin{
			AccessToken: fixtureAccessToken, RefreshToken: fixtureRefreshToken, AccountID: "acct-tokens-456",
		}}},
		// Without auth_mode a non-null OPENAI_API_KEY comes before tokens,
		// as in Codex's AuthDotJson::resolved_mode.
		{"chatgpt_legacy_both.json", &Credentials{Kind: KindAPIKey, APIKey: fixtureAPIKey}},
		{"chatgpt_external.json", &Credentials{Kind: KindChatGPT, ChatGPT: &ChatGPTLogin{
			AccessToken: fixtureAccessToken, AccountID: "acct-claim-123", FedRAMP: true, ExternallyManaged: true,
		}}},
		{"chatgpt_no_id_token.json", &Credentials{Kind: KindChatGPT, ChatGPT: &ChatGPTLogin{
			AccessToken: fixtureAccessToken, AccountID: "acct-tokens-456",
		}}},
		{"agent_identity.json", &Credentials{Kind: KindAgentIdentity, AgentIdentity: &identity.Record{
			AgentRuntimeID: "agent-123", AgentPrivateKey: fixturePrivateKey, AccountID: "acct-agent-777",
			ChatGPTUserID: "user-1", Email: "a@example.com", PlanType: "enterprise", IsFedRAMP: true,
		}}},
		{"agent_identity_nomode.json", &Credentials{Kind: KindAPIKey, APIKey: fixtureAPIKey}},
		{"agent_identity_record.json", &Credentials{Kind: KindAgentIdentity, AgentIdentity: &identity.Record{
			AgentRuntimeID: "agent-123", AgentPrivateKey: fixturePrivateKey, AccountID: "acct-record-888",
			ChatGPTUserID: "user-1", PlanType: "plus",
		}}},
		{"null_api_key.json", &Credentials{Kind: KindNone}},
		{"record_only_nomode.json", &Credentials{Kind: KindNone}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			home := homeWith(t, tc.fixture)
			got, err := Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(nil), DecodeAgentIdentityJWT: decodeUnverified})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tc.want.Kind != KindNone && got.Source != filepath.Join(home, AuthFileName) {
				t.Errorf("Source = %q, want the auth.json path", got.Source)
			}
			// Tokens and JWTs are compared by presence: their exact text
			// is the fixture's.
			if got.ChatGPT != nil {
				if got.ChatGPT.IDToken == "" && !strings.Contains(tc.fixture, "no_id_token") {
					t.Error("IDToken not loaded")
				}
				got.ChatGPT.IDToken = ""
			}
			if (got.AgentIdentityJWT != "") != (tc.fixture == "agent_identity.json") {
				t.Errorf("AgentIdentityJWT set = %v", got.AgentIdentityJWT != "")
			}
			got.AgentIdentityJWT, got.Source = "", ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("credentials mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRouting(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    headers.Routing
	}{
		{"apikey.json", headers.Routing{}},
		{"chatgpt.json", headers.Routing{AccountID: "acct-claim-123", FedRAMP: true}},
		{"chatgpt_account_override.json", headers.Routing{AccountID: "acct-tokens-456"}},
		{"agent_identity.json", headers.Routing{AccountID: "acct-agent-777", FedRAMP: true}},
		{"agent_identity_record.json", headers.Routing{AccountID: "acct-record-888"}},
		{"", headers.Routing{}},
	} {
		c, err := Load(LoadOptions{CodexHome: homeWith(t, tc.fixture), Getenv: fakeEnv(nil), DecodeAgentIdentityJWT: decodeUnverified})
		if err != nil {
			t.Fatalf("%s: %v", tc.fixture, err)
		}
		if got := c.Routing(); got != tc.want {
			t.Errorf("%s: Routing() = %+v, want %+v", tc.fixture, got, tc.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		fixture  string
		field    string
		sentinel error
		decoder  bool
	}{
		{"bad_auth_mode.json", "auth_mode", ErrUnknownAuthMode, true},
		{"wrong_type_api_key.json", "OPENAI_API_KEY", ErrInvalidAuthFile, true},
		{"wrong_type_tokens.json", "tokens", ErrInvalidAuthFile, true},
		{"wrong_type_access_token.json", "tokens.access_token", ErrInvalidAuthFile, true},
		{"wrong_type_last_refresh.json", "last_refresh", ErrInvalidAuthFile, true},
		{"wrong_type_record.json", "agent_identity_record.agent_runtime_id", ErrInvalidAuthFile, true},
		{"wrong_type_auth_mode.json", "auth_mode", ErrInvalidAuthFile, true},
		{"wrong_type_fedramp_claim.json", "tokens.id_token", ErrInvalidAuthFile, true},
		{"malformed_id_token.json", "tokens.id_token", ErrInvalidAuthFile, true},
		{"access_token_newline.json", "tokens.access_token", headers.ErrInvalidValue, true},
		{"apikey_mode_missing_key.json", "OPENAI_API_KEY", ErrInvalidAuthFile, true},
		{"chatgpt_mode_missing_tokens.json", "tokens", ErrInvalidAuthFile, true},
		{"agent_mode_missing_jwt.json", "agent_identity", ErrInvalidAuthFile, true},
		{"agent_identity.json", "agent_identity", ErrNoJWTDecoder, false},
		{"not_json.json", "", ErrInvalidAuthFile, true},
		{"trailing_data.json", "", ErrInvalidAuthFile, true},
		{"duplicate_key.json", "OPENAI_API_KEY", ErrInvalidAuthFile, true},
		{"top_level_array.json", "", ErrInvalidAuthFile, true},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			home := homeWith(t, tc.fixture)
			opts := LoadOptions{CodexHome: home, Getenv: fakeEnv(map[string]string{EnvOpenAIAPIKey: "sk-env-fallback"})}
			if tc.decoder {
				opts.DecodeAgentIdentityJWT = decodeUnverified
			}
			c, err := Load(opts)
			if err == nil {
				t.Fatalf("no error; got %v", c)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("%T is not a *LoadError", err)
			}
			if le.Field != tc.field {
				t.Errorf("Field = %q, want %q (err %v)", le.Field, tc.field, err)
			}
			if le.Path != filepath.Join(home, AuthFileName) {
				t.Errorf("Path = %q", le.Path)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

func TestUnknownAuthModeNamesValue(t *testing.T) {
	_, err := Load(LoadOptions{CodexHome: homeWith(t, "bad_auth_mode.json"), Getenv: fakeEnv(nil)})
	if err == nil || !strings.Contains(err.Error(), `"magicLink"`) {
		t.Fatalf("error %v does not name the mode", err)
	}
	if !errors.Is(err, ErrInvalidAuthFile) {
		t.Error("unknown auth_mode does not wrap ErrInvalidAuthFile")
	}
}

func TestLoadPrecedence(t *testing.T) {
	agentJWT := jwtFor(t, testRecord("acct-env-agent"))
	type want struct {
		kind   Kind
		source string // "file" means the auth.json path
		apiKey string
	}
	for _, tc := range []struct {
		name    string
		fixture string
		env     map[string]string
		want    want
	}{
		{"nothing", "", nil, want{KindNone, "", ""}},
		{"env OPENAI_API_KEY without file", "", map[string]string{EnvOpenAIAPIKey: "sk-env-openai"}, want{KindAPIKey, SourceEnvOpenAIAPIKey, "sk-env-openai"}},
		{"env OPENAI_API_KEY when file has no credential", "null_api_key.json", map[string]string{EnvOpenAIAPIKey: "sk-env-openai"}, want{KindAPIKey, SourceEnvOpenAIAPIKey, "sk-env-openai"}},
		{"file beats env OPENAI_API_KEY", "chatgpt.json", map[string]string{EnvOpenAIAPIKey: "sk-env-openai"}, want{KindChatGPT, "file", ""}},
		{"file api key beats env OPENAI_API_KEY", "apikey.json", map[string]string{EnvOpenAIAPIKey: "sk-env-openai"}, want{KindAPIKey, "file", fixtureAPIKey}},
		{"CODEX_API_KEY beats file", "chatgpt.json", map[string]string{EnvCodexAPIKey: "sk-env-codex"}, want{KindAPIKey, SourceEnvCodexAPIKey, "sk-env-codex"}},
		{"CODEX_API_KEY beats CODEX_AGENT_IDENTITY", "agent_identity.json", map[string]string{EnvCodexAPIKey: "sk-env-codex", EnvCodexAgentIdentity: agentJWT}, want{KindAPIKey, SourceEnvCodexAPIKey, "sk-env-codex"}},
		{"CODEX_API_KEY ignores a broken file", "not_json.json", map[string]string{EnvCodexAPIKey: " sk-env-codex\n"}, want{KindAPIKey, SourceEnvCodexAPIKey, "sk-env-codex"}},
		{"CODEX_AGENT_IDENTITY beats file", "apikey.json", map[string]string{EnvCodexAgentIdentity: agentJWT, EnvOpenAIAPIKey: "sk-env-openai"}, want{KindAgentIdentity, SourceEnvCodexAgentIdentity, ""}},
		{"blank env values ignored", "chatgpt.json", map[string]string{EnvCodexAPIKey: "  ", EnvCodexAgentIdentity: "\t"}, want{KindChatGPT, "file", ""}},
		{"OPENAI_API_KEY beats tokens and agent_identity without auth_mode", "agent_identity_nomode.json", nil, want{KindAPIKey, "file", fixtureAPIKey}},
		{"OPENAI_API_KEY beats tokens without auth_mode", "chatgpt_legacy_both.json", nil, want{KindAPIKey, "file", fixtureAPIKey}},
		{"auth_mode apikey beats tokens", "apikey.json", nil, want{KindAPIKey, "file", fixtureAPIKey}},
		{"CODEX_HOME from env", "USE_ENV_HOME", nil, want{KindAPIKey, "file", fixtureAPIKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			opts := LoadOptions{Getenv: fakeEnv(env), DecodeAgentIdentityJWT: decodeUnverified}
			var home string
			if tc.fixture == "USE_ENV_HOME" {
				home = homeWith(t, "apikey.json")
				env[EnvCodexHome] = home
			} else {
				home = homeWith(t, tc.fixture)
				opts.CodexHome = home
			}
			c, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			wantSource := tc.want.source
			if wantSource == "file" {
				wantSource = filepath.Join(home, AuthFileName)
			}
			if c.Kind != tc.want.kind || c.Source != wantSource || c.APIKey != tc.want.apiKey {
				t.Errorf("got kind=%v source=%q apiKey-set=%v; want kind=%v source=%q", c.Kind, c.Source, c.APIKey != "", tc.want.kind, wantSource)
			}
			if c.Kind == KindAgentIdentity && c.Source == SourceEnvCodexAgentIdentity {
				if c.AgentIdentity.AccountID != "acct-env-agent" || c.AgentIdentityJWT != agentJWT {
					t.Errorf("env agent identity not loaded: %v", c)
				}
			}
		})
	}
}

func TestLoadEnvErrors(t *testing.T) {
	home := homeWith(t, "")
	for _, tc := range []struct {
		name  string
		env   map[string]string
		opts  LoadOptions
		field string
		is    error
	}{
		{"CODEX_API_KEY with CR", map[string]string{EnvCodexAPIKey: "sk-SECRET\rX"}, LoadOptions{}, SourceEnvCodexAPIKey, headers.ErrInvalidValue},
		{"OPENAI_API_KEY with LF", map[string]string{EnvOpenAIAPIKey: "sk-SECRET\nX"}, LoadOptions{}, SourceEnvOpenAIAPIKey, headers.ErrInvalidValue},
		{"agent JWT without decoder", map[string]string{EnvCodexAgentIdentity: "a.b.c"}, LoadOptions{}, SourceEnvCodexAgentIdentity, ErrNoJWTDecoder},
		{"decoder error", map[string]string{EnvCodexAgentIdentity: "a.b.c"}, LoadOptions{DecodeAgentIdentityJWT: decodeUnverified}, SourceEnvCodexAgentIdentity, nil},
		{"record with bad key", map[string]string{EnvCodexAgentIdentity: "x"}, LoadOptions{DecodeAgentIdentityJWT: func(string) (*identity.Record, error) {
			return &identity.Record{AgentRuntimeID: "r", AgentPrivateKey: "bm90LWEta2V5"}, nil
		}}, SourceEnvCodexAgentIdentity, identity.ErrInvalidKey},
		{"record with control char in account", map[string]string{EnvCodexAgentIdentity: "x"}, LoadOptions{DecodeAgentIdentityJWT: func(string) (*identity.Record, error) {
			return testRecord("acct\n1"), nil
		}}, SourceEnvCodexAgentIdentity, headers.ErrInvalidValue},
		{"decoder returns nil", map[string]string{EnvCodexAgentIdentity: "x"}, LoadOptions{DecodeAgentIdentityJWT: func(string) (*identity.Record, error) { return nil, nil }}, SourceEnvCodexAgentIdentity, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.CodexHome = home
			opts.Getenv = fakeEnv(tc.env)
			_, err := Load(opts)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want *LoadError", err)
			}
			if le.Field != tc.field || le.Path != "" {
				t.Errorf("Field=%q Path=%q, want Field=%q", le.Field, le.Path, tc.field)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

func TestLoadAuthFileEdgeCases(t *testing.T) {
	env := fakeEnv(map[string]string{EnvOpenAIAPIKey: "sk-env-openai"})

	t.Run("symlink is followed", func(t *testing.T) {
		home := t.TempDir()
		target := filepath.Join(t.TempDir(), "real-auth.json")
		data, _ := os.ReadFile("testdata/chatgpt.json")
		if err := os.WriteFile(target, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(home, AuthFileName)); err != nil {
			t.Skip("symlinks unavailable:", err)
		}
		c, err := Load(LoadOptions{CodexHome: home, Getenv: env})
		if err != nil || c.Kind != KindChatGPT {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("dangling symlink is missing", func(t *testing.T) {
		home := t.TempDir()
		if err := os.Symlink(filepath.Join(home, "nowhere"), filepath.Join(home, AuthFileName)); err != nil {
			t.Skip("symlinks unavailable:", err)
		}
		c, err := Load(LoadOptions{CodexHome: home, Getenv: env})
		if err != nil || c.Source != SourceEnvOpenAIAPIKey {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("symlink to a directory is refused", func(t *testing.T) {
		home := t.TempDir()
		if err := os.Symlink(t.TempDir(), filepath.Join(home, AuthFileName)); err != nil {
			t.Skip("symlinks unavailable:", err)
		}
		_, err := Load(LoadOptions{CodexHome: home, Getenv: env})
		if !errors.Is(err, ErrInvalidAuthFile) || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("directory is refused", func(t *testing.T) {
		home := t.TempDir()
		if err := os.Mkdir(filepath.Join(home, AuthFileName), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(LoadOptions{CodexHome: home, Getenv: env}); !errors.Is(err, ErrInvalidAuthFile) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreadable file is an error", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root can read a mode-0000 file")
		}
		home := homeWith(t, "apikey.json")
		if err := os.Chmod(filepath.Join(home, AuthFileName), 0); err != nil {
			t.Fatal(err)
		}
		_, err := Load(LoadOptions{CodexHome: home, Getenv: env})
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("err = %v, want permission error", err)
		}
	})
	t.Run("oversize file", func(t *testing.T) {
		home := t.TempDir()
		big := `{"OPENAI_API_KEY": "sk-SECRET", "pad": "` + strings.Repeat("x", MaxAuthFileSize) + `"}`
		if err := os.WriteFile(filepath.Join(home, AuthFileName), []byte(big), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(LoadOptions{CodexHome: home, Getenv: env})
		if !errors.Is(err, ErrInvalidAuthFile) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
		if _, err := ParseAuthFile([]byte(big)); !errors.Is(err, ErrInvalidAuthFile) {
			t.Fatalf("ParseAuthFile: err = %v", err)
		}
	})
	t.Run("exactly the cap is accepted", func(t *testing.T) {
		prefix, suffix := `{"pad": "`, `"}`
		data := prefix + strings.Repeat("x", MaxAuthFileSize-len(prefix)-len(suffix)) + suffix
		if len(data) != MaxAuthFileSize {
			t.Fatal("bad test setup")
		}
		if _, err := ParseAuthFile([]byte(data)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDefaultCodexHome(t *testing.T) {
	got, err := DefaultCodexHome(fakeEnv(map[string]string{EnvCodexHome: " /x/codex "}))
	if err != nil || got != "/x/codex" {
		t.Errorf("got %q, %v", got, err)
	}
	got, err = DefaultCodexHome(fakeEnv(nil))
	if err != nil {
		t.Skip("no home directory:", err)
	}
	if filepath.Base(got) != ".codex" {
		t.Errorf("default home = %q, want .../.codex", got)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindNone: "none", KindAPIKey: "apikey", KindChatGPT: "chatgpt", KindAgentIdentity: "agentIdentity", Kind(9): "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
