// FileStore.SaveAgentIdentity checks under the lock that auth.json still
// holds the record's login, the user as well as the account: when another
// user of the same workspace logged in while user A's identity was being
// provisioned, A's record (private key included) must not land in B's
// auth.json, nor replace B's own identity.
package credentials_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

func rvsJWT(claims map[string]any) string {
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(p) + ".sig"
}

func TestSaveAgentIdentityRefusesAnotherUsersFile(t *testing.T) {
	auth := map[string]any{"https://api.openai.com/auth": map[string]any{
		"chatgpt_account_id": "acct-team", "chatgpt_user_id": "user-B"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	newRecord := func(runtime, user string) *identity.Record {
		key, err := identity.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &identity.Record{AgentRuntimeID: runtime, AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
			AccountID: "acct-team", ChatGPTUserID: user, PlanType: "team"}
	}
	for _, tc := range []struct {
		name   string
		tokens map[string]any
	}{
		{"user in the id token", map[string]any{"id_token": rvsJWT(auth), "access_token": "opaque-access",
			"refresh_token": "rt-B", "account_id": "acct-team"}},
		{"user in the access token only", map[string]any{"id_token": rvsJWT(map[string]any{}), "access_token": rvsJWT(auth),
			"refresh_token": "rt-B", "account_id": "acct-team"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), credentials.AuthFileName)
			doc, _ := json.Marshal(map[string]any{
				"OPENAI_API_KEY": nil,
				"tokens":         tc.tokens,
				"last_refresh":   time.Now().UTC().Format(time.RFC3339),
			})
			if err := os.WriteFile(path, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			store := credentials.NewFileStore(path)
			if err := store.SaveAgentIdentity(ctx, newRecord("runtime-of-B", "user-B")); err != nil {
				t.Fatalf("B's own identity: %v", err)
			}
			err := store.SaveAgentIdentity(ctx, newRecord("runtime-of-A", "user-A"))
			af, lerr := store.Load()
			if lerr != nil {
				t.Fatal(lerr)
			}
			if got := af.AgentIdentityRecord; got == nil || got.ChatGPTUserID != "user-B" || got.AgentRuntimeID != "runtime-of-B" {
				t.Fatalf("B's auth.json now holds identity %v (err %v), want B's runtime-of-B", got, err)
			}
			if !errors.Is(err, credentials.ErrLoginChanged) {
				t.Fatalf("SaveAgentIdentity = %v, want ErrLoginChanged", err)
			}
		})
	}
}
