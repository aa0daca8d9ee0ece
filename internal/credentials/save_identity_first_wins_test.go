// FileStore.SaveAgentIdentity is first-wins under the file lock: two
// FileStores (or two processes) on one auth.json that provisioned one
// login at the same time end with one stored identity, and the loser is
// told so (ErrIdentityExists) and loads the winner. The stored record
// carries the email and plan_type of the id token, as Codex writes it.
package credentials_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

func TestSaveAgentIdentityFirstWinsAcrossStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	claims := map[string]any{
		"email": "ada@example.com",
		"https://api.openai.com/auth": map[string]any{
			"chatgpt_account_id": "acct-fw", "chatgpt_user_id": "user-fw", "chatgpt_plan_type": "plus"},
	}
	path := filepath.Join(t.TempDir(), credentials.AuthFileName)
	doc, _ := json.Marshal(map[string]any{
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{"id_token": rvsJWT(claims), "access_token": "opaque-access",
			"refresh_token": "rt-fw", "account_id": "acct-fw"},
	})
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	newRecord := func(runtime string) *identity.Record {
		key, err := identity.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &identity.Record{AgentRuntimeID: runtime, AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
			AccountID: "acct-fw", ChatGPTUserID: "user-fw"}
	}
	a, b := credentials.NewFileStore(path), credentials.NewFileStore(path)
	if err := a.SaveAgentIdentity(ctx, newRecord("rt-first")); err != nil {
		t.Fatal(err)
	}
	err := b.SaveAgentIdentity(ctx, newRecord("rt-second"))
	if !errors.Is(err, credentials.ErrIdentityExists) {
		t.Fatalf("second store's save = %v, want ErrIdentityExists", err)
	}
	got, err := b.LoadAgentIdentity(ctx, credentials.Login{AccountID: "acct-fw", UserID: "user-fw"})
	if err != nil || got == nil || got.AgentRuntimeID != "rt-first" {
		t.Fatalf("stored identity = %v, %v; want rt-first", got, err)
	}
	if got.Email != "ada@example.com" || got.PlanType != "plus" {
		t.Errorf("record email %q plan %q, want the id token's", got.Email, got.PlanType)
	}
	// Saving the stored runtime again is no conflict.
	if err := b.SaveAgentIdentity(ctx, got); err != nil {
		t.Fatalf("re-saving the stored runtime: %v", err)
	}
}
