package login

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// A login written to auth.json while Logout revokes the previous one's
// token is not removed: Logout keeps it and says so with ErrLoginReplaced.
func TestLogoutKeepsALoginWrittenDuringRevoke(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	old, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-old"})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-new"})
	if err != nil {
		t.Fatal(err)
	}
	home := writeLogin(t, old, "")
	path := filepath.Join(home, "auth.json")
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A new login lands while the old token is being revoked.
		_ = os.WriteFile(path, fresh.AuthJSON(time.Now()), 0o600)
		w.WriteHeader(http.StatusOK)
	}))
	defer hs.Close()
	err = Logout(testCtx(t), Options{CodexHome: home, Getenv: env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", hs.URL+"/oauth/revoke")})
	if !errors.Is(err, ErrLoginReplaced) {
		t.Fatalf("err = %v, want ErrLoginReplaced", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the new login's auth.json was removed: %v", err)
	}
	af, err := credentials.ParseAuthFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if af.Tokens == nil || af.Tokens.RefreshToken != fresh.RefreshToken {
		t.Error("the login written during the revoke was removed")
	}
}
