package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/identityreplace"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// codexHome copies testdata/codex/<fixture> to a fresh CODEX_HOME.
func codexHome(t *testing.T, fixture string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "codex", fixture))
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, AuthFileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// Files in the shape the current Codex CLI writes load as the credential
// Codex would use.
func TestCodexShapedAuthJSONLoads(t *testing.T) {
	iss, err := identitytest.NewJWTIssuer()
	if err != nil {
		t.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-jwt-1", AgentPrivateKey: fixturePrivateKey, AccountID: "acct-jwt", ChatGPTUserID: "user-jwt", PlanType: "pro"}
	jwt, err := iss.Mint(rec, identitytest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jwtHome := t.TempDir()
	doc := `{"auth_mode":"agentIdentity","OPENAI_API_KEY":null,"agent_identity":"` + jwt + `"}`
	if err := os.WriteFile(filepath.Join(jwtHome, AuthFileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	decode := identity.DecodeAgentIdentityJWTUnverified

	tests := []struct {
		name  string
		home  string
		check func(t *testing.T, c *Credentials)
	}{
		{"chatgpt login", codexHome(t, "chatgpt.json"), func(t *testing.T, c *Credentials) {
			if c.Kind != KindChatGPT || c.ChatGPT.AccountID != "acct-codex-1" || c.ChatGPT.UserID != "user-codex-1" || !c.ChatGPT.FedRAMP {
				t.Errorf("login = %v (user %q)", c, c.ChatGPT.UserID)
			}
		}},
		{"chatgpt login with record agent_identity", codexHome(t, "chatgpt_record.json"), func(t *testing.T, c *Credentials) {
			if c.Kind != KindChatGPT || c.ChatGPT.AccountID != "acct-codex-1" {
				t.Errorf("a provisioned record beside a login must leave the login the credential: %v", c)
			}
		}},
		{"agent identity JWT", jwtHome, func(t *testing.T, c *Credentials) {
			if c.Kind != KindAgentIdentity || c.AgentIdentity.AgentRuntimeID != "rt-jwt-1" || c.AgentIdentityJWT != jwt {
				t.Errorf("got %v", c)
			}
		}},
		{"api key", codexHome(t, "apikey.json"), func(t *testing.T, c *Credentials) {
			if c.Kind != KindAPIKey || c.APIKey != "sk-SECRET-codex-apikey" || c.PersonalAccessToken {
				t.Errorf("got %v", c)
			}
		}},
		{"personal access token", codexHome(t, "pat.json"), func(t *testing.T, c *Credentials) {
			if c.Kind != KindAPIKey || c.APIKey != "at-SECRET-codex-pat" || !c.PersonalAccessToken {
				t.Errorf("got %v", c)
			}
			if s := c.String(); !strings.Contains(s, "PersonalAccessToken:[REDACTED]") || strings.Contains(s, "SECRET") {
				t.Errorf("String = %s", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(LoadOptions{CodexHome: tt.home, Getenv: fakeEnv(nil), DecodeAgentIdentityJWT: decode})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}

	// The record agent_identity is the login's stored identity.
	got, err := NewFileStore(filepath.Join(codexHome(t, "chatgpt_record.json"), AuthFileName)).
		LoadAgentIdentity(testCtx(t), Login{AccountID: "acct-codex-1", UserID: "user-codex-1"})
	if err != nil || got == nil || got.AgentRuntimeID != "rt-codex-1" {
		t.Fatalf("LoadAgentIdentity = %v, %v", got, err)
	}
	af, _ := NewFileStore(filepath.Join(codexHome(t, "chatgpt_record.json"), AuthFileName)).Load()
	if af.AgentIdentityTaskID != "task-codex-1" {
		t.Errorf("task_id = %q", af.AgentIdentityTaskID)
	}
}

// CODEX_ACCESS_TOKEN is a personal access token when it starts with "at-"
// and an Agent Identity JWT otherwise; it comes after CODEX_API_KEY and
// before auth.json.
func TestCodexAccessTokenEnv(t *testing.T) {
	home := codexHome(t, "chatgpt.json")
	c, err := Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(map[string]string{EnvCodexAccessToken: " at-SECRET-env-pat "})})
	if err != nil || c.Kind != KindAPIKey || !c.PersonalAccessToken || c.APIKey != "at-SECRET-env-pat" || c.Source != SourceEnvCodexAccessToken {
		t.Fatalf("PAT: %v, %v", c, err)
	}
	c, err = Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(map[string]string{EnvCodexAccessToken: "at-x", EnvCodexAPIKey: "sk-wins"})})
	if err != nil || c.APIKey != "sk-wins" {
		t.Fatalf("CODEX_API_KEY must win: %v, %v", c, err)
	}
	_, err = Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(map[string]string{EnvCodexAccessToken: "not.a-pat.jwt"})})
	if !errors.Is(err, ErrNoJWTDecoder) {
		t.Fatalf("a non-PAT value is an Agent Identity JWT: %v", err)
	}
}

// The record SaveAgentIdentity writes goes into agent_identity in Codex's
// record schema, byte for byte as the golden file, keeping every unknown
// member; a legacy agent_identity_record is migrated.
func TestSavedRecordMatchesCodexSchema(t *testing.T) {
	for _, fixture := range []string{"chatgpt.json", "chatgpt_legacy_record.json"} {
		t.Run(fixture, func(t *testing.T) {
			home := codexHome(t, fixture)
			path := filepath.Join(home, AuthFileName)
			// No email or plan: both come from the file's id token, as
			// Codex writes them.
			rec := &identity.Record{AgentRuntimeID: "rt-saved-1", AgentPrivateKey: fixturePrivateKey, AccountID: "acct-codex-1", ChatGPTUserID: "user-codex-1", IsFedRAMP: true}
			// The legacy record is of the same login: the save replaces it
			// as the replacement of a runtime the AuthAPI no longer knows.
			ctx := identityreplace.With(testCtx(t), "rt-legacy-1")
			if err := NewFileStore(path).SaveAgentIdentity(ctx, rec); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			golden := filepath.Join("testdata", "codex", "golden_saved_record.json")
			if *updateGolden && fixture == "chatgpt.json" {
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("written auth.json differs from %s:\n%s", golden, got)
			}
			// Codex's AgentIdentityAuthRecord: every required member present,
			// email a string, nothing it does not know.
			var top map[string]json.RawMessage
			if err := json.Unmarshal(got, &top); err != nil {
				t.Fatal(err)
			}
			if _, ok := top["agent_identity_record"]; ok {
				t.Error("legacy agent_identity_record still written")
			}
			var codexRecord struct {
				AgentRuntimeID  *string `json:"agent_runtime_id"`
				AgentPrivateKey *string `json:"agent_private_key"`
				AccountID       *string `json:"account_id"`
				ChatGPTUserID   *string `json:"chatgpt_user_id"`
				Email           *string `json:"email"`
				PlanType        *string `json:"plan_type"`
				IsFedRAMP       *bool   `json:"chatgpt_account_is_fedramp"`
				TaskID          *string `json:"task_id"`
			}
			dec := json.NewDecoder(bytes.NewReader(top["agent_identity"]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&codexRecord); err != nil {
				t.Fatalf("agent_identity is not Codex's record: %v", err)
			}
			if codexRecord.AgentRuntimeID == nil || *codexRecord.AgentRuntimeID != "rt-saved-1" || codexRecord.AgentPrivateKey == nil ||
				codexRecord.AccountID == nil || codexRecord.ChatGPTUserID == nil || codexRecord.Email == nil || *codexRecord.Email != "dev@example.com" ||
				codexRecord.PlanType == nil || *codexRecord.PlanType != "pro" || codexRecord.IsFedRAMP == nil || !*codexRecord.IsFedRAMP || codexRecord.TaskID != nil {
				t.Errorf("record members: %s", top["agent_identity"])
			}
			for _, keep := range []string{`"future_top_member"`, `"future_token_member": "kept"`, `"last_refresh": "2026-11-30T10:00:00.123456Z"`} {
				if !bytes.Contains(got, []byte(keep)) {
					t.Errorf("lost %s", keep)
				}
			}
			// It loads back as the login's identity.
			back, err := NewFileStore(path).LoadAgentIdentity(testCtx(t), Login{AccountID: "acct-codex-1", UserID: "user-codex-1"})
			if err != nil || back == nil || back.AgentRuntimeID != "rt-saved-1" {
				t.Fatalf("LoadAgentIdentity = %v, %v", back, err)
			}
		})
	}
}

// Unknown members inside a Codex record and its task_id survive a write
// that does not replace the record.
func TestRecordUnknownMembersSurviveRewrite(t *testing.T) {
	home := codexHome(t, "chatgpt_record.json")
	path := filepath.Join(home, AuthFileName)
	err := NewFileStore(path).Update(testCtx(t), func(a *AuthFile) error {
		return a.SetExtra("other", json.RawMessage(`1`))
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	for _, keep := range []string{`"future_record_member": true`, `"task_id": "task-codex-1"`} {
		if !bytes.Contains(got, []byte(keep)) {
			t.Errorf("lost %s:\n%s", keep, got)
		}
	}
	// Saving the same runtime again keeps its task; another runtime drops it.
	rec := &identity.Record{AgentRuntimeID: "rt-codex-1", AgentPrivateKey: fixturePrivateKey, AccountID: "acct-codex-1", ChatGPTUserID: "user-codex-1", PlanType: "pro", IsFedRAMP: true}
	if err := NewFileStore(path).SaveAgentIdentity(testCtx(t), rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Contains(got, []byte(`"task_id": "task-codex-1"`)) {
		t.Errorf("task_id of the same runtime dropped")
	}
	rec.AgentRuntimeID = "rt-other"
	if err := NewFileStore(path).SaveAgentIdentity(identityreplace.With(testCtx(t), "rt-codex-1"), rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); bytes.Contains(got, []byte(`task_id`)) {
		t.Errorf("task_id of another runtime kept")
	}
}

// Writers take agentauth's lock file in CODEX_HOME, mode 0600.
func TestWritersTakeAgentauthLock(t *testing.T) {
	home := codexHome(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	release, err := lockAuthStorage(testCtx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = NewFileStore(path).Update(ctx, func(a *AuthFile) error { return a.SetExtra("x", json.RawMessage(`1`)) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update while another agentauth writer holds %s: %v, want it to wait", AuthStorageLockFileName, err)
	}
	release()
	if err := NewFileStore(path).Update(testCtx(t), func(a *AuthFile) error { return a.SetExtra("x", json.RawMessage(`1`)) }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(home, AuthStorageLockFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
}

// A dangling auth.json symlink is kept on update: the write creates the
// file it points to (issue #12, third suspicion).
func TestDanglingSymlinkKeptOnUpdate(t *testing.T) {
	home := t.TempDir()
	target := filepath.Join(home, "real", "auth.json")
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, AuthFileName)
	if err := os.Symlink(filepath.Join("real", "auth.json"), link); err != nil {
		t.Skip("symlinks unsupported:", err)
	}
	key := "sk-new"
	if err := NewFileStore(link).Update(testCtx(t), func(a *AuthFile) error { a.OpenAIAPIKey = &key; return nil }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("auth.json is no longer a symlink: %v %v", fi, err)
	}
	if data, err := os.ReadFile(target); err != nil || !bytes.Contains(data, []byte("sk-new")) {
		t.Fatalf("target: %s %v", data, err)
	}
}

// With config.toml keeping Codex's credentials in the keyring and no
// auth.json, Load says so and how to switch to file storage.
func TestKeyringStorageExplained(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("cli_auth_credentials_store = \"keyring\"\n"), 0o600)
	_, err := Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(nil)})
	if !errors.Is(err, ErrKeyringStorage) || !strings.Contains(err.Error(), `cli_auth_credentials_store = "file"`) {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("cli_auth_credentials_store = \"file\"\n"), 0o600)
	if c, err := Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(nil)}); err != nil || c.Kind != KindNone {
		t.Fatalf("file storage without auth.json: %v, %v", c, err)
	}
}
