package credentials

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

func amuJWT(t *testing.T, iat time.Time, auth map[string]any) string {
	t.Helper()
	claims := map[string]any{"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix()}
	if auth != nil {
		claims["https://api.openai.com/auth"] = auth
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(p) + ".sig"
}

// The per-path memory remembers login A (user u-a of a workspace). An
// auth.json that now holds another login of that workspace whose tokens
// name no user, issued before A's, is that other login: it is served as
// it is, never replaced by (nor written back over with) A's tokens.
func TestAuthFileMemoryNeverAdoptsLoginWithoutKnownUser(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a := &TokenSet{
		AccessToken:  amuJWT(t, t0.Add(time.Hour), map[string]any{"chatgpt_account_id": "acct-w", "chatgpt_user_id": "u-a"}),
		RefreshToken: "rt-a",
		AccountID:    "acct-w",
	}
	b := &TokenSet{
		AccessToken:  amuJWT(t, t0, map[string]any{"chatgpt_account_id": "acct-w"}), // no user claim
		RefreshToken: "rt-b",
		AccountID:    "acct-w",
	}
	m := &authFileMemory{}
	if got, behind := m.effective(a); behind || got.AccessToken != a.AccessToken {
		t.Fatal("first set not served as it is")
	}
	got, behind := m.effective(b)
	if behind || got.RefreshToken != b.RefreshToken {
		t.Fatalf("a login naming no user was replaced by the remembered login of user u-a (behind=%v)", behind)
	}
	// The memory now follows b: a spent-token check can never bring A back.
	if got, behind := m.effective(b); behind || got.RefreshToken != b.RefreshToken {
		t.Fatal("memory went back to login A")
	}
}
