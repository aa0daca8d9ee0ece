// A RefreshingTokenSource is bound to the login (account and user) it
// first loaded, and that binding holds for what the token endpoint
// answers too: an answer whose id token or access token names another
// account or user is a permanent account_changed failure, and none of its
// tokens is served or stored (auth.json keeps this login).
package credentials_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

func rvaJWT(claims map[string]any) string {
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(p) + ".sig"
}

func rvaAuth(account, user string) map[string]any {
	return map[string]any{"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": account, "chatgpt_user_id": user}}
}

func rvaClaims(base map[string]any, exp time.Time) map[string]any {
	out := map[string]any{"exp": exp.Unix()}
	for k, v := range base {
		out[k] = v
	}
	return out
}

func TestRefreshAnswerCannotSwitchTheLogin(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(account, user string) string {
		return rvaJWT(rvaClaims(rvaAuth(account, user), now.Add(time.Hour)))
	}
	for _, tc := range []struct {
		name string
		resp map[string]any
		ok   bool
	}{
		{"id_token of another account", map[string]any{
			"id_token": rvaJWT(rvaAuth("acct-OTHER", "user-other")), "access_token": at("acct-OTHER", "user-other"), "refresh_token": "rt-next-1",
		}, false},
		{"access token of another account, no id_token", map[string]any{
			"access_token": at("acct-OTHER", "user-other"), "refresh_token": "rt-next-2",
		}, false},
		{"another user of the same account", map[string]any{
			"id_token": rvaJWT(rvaAuth("acct-MINE", "user-other")), "access_token": at("acct-MINE", "user-other"), "refresh_token": "rt-next-3",
		}, false},
		{"id_token of this login, access token of another account", map[string]any{
			"id_token": rvaJWT(rvaAuth("acct-MINE", "user-mine")), "access_token": at("acct-OTHER", "user-mine"), "refresh_token": "rt-next-4",
		}, false},
		{"this login", map[string]any{
			"id_token": rvaJWT(rvaAuth("acct-MINE", "user-mine")), "access_token": at("acct-MINE", "user-mine"), "refresh_token": "rt-next-5",
		}, true},
		{"this login, access token without claims", map[string]any{
			"access_token": "opaque-next", "refresh_token": "rt-next-6",
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int32
			endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(tc.resp)
			}))
			defer endpoint.Close()
			home := t.TempDir()
			path := filepath.Join(home, credentials.AuthFileName)
			doc, _ := json.Marshal(map[string]any{
				"OPENAI_API_KEY": nil,
				"tokens": map[string]any{
					"id_token":      rvaJWT(rvaAuth("acct-MINE", "user-mine")),
					"access_token":  rvaJWT(rvaClaims(rvaAuth("acct-MINE", "user-mine"), now.Add(-time.Minute))),
					"refresh_token": "rt-mine", "account_id": "acct-MINE"},
				"last_refresh": now.Add(-time.Hour).Format(time.RFC3339),
			})
			if err := os.WriteFile(path, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
				Coordinator: credentials.NewAuthFileCoordinator(home),
				TokenURL:    endpoint.URL + "/oauth/token",
				Getenv:      func(string) string { return "" },
				Now:         func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := src.Token(ctx)
			after, _ := os.ReadFile(path)
			if tc.ok {
				if err != nil {
					t.Fatalf("an answer of this login was refused: %v", err)
				}
				if tok.AccountID != "acct-MINE" || tok.UserID != "user-mine" || tok.AccessToken.Reveal() != tc.resp["access_token"] {
					t.Fatalf("token %v user %q, want the answer's access token for acct-MINE/user-mine", tok, tok.UserID)
				}
				if bytes.Equal(after, doc) {
					t.Fatal("the answer of this login was not stored")
				}
				return
			}
			var re *credentials.RefreshError
			if !errors.As(err, &re) || !re.Permanent || re.Reason != credentials.ReasonAccountChanged || !errors.Is(err, credentials.ErrLoginExpired) {
				t.Fatalf("Token = %v, %v; want a permanent account_changed RefreshError", tok, err)
			}
			if !bytes.Equal(after, doc) {
				t.Fatalf("auth.json changed after an answer for another login:\n%s", after)
			}
			// Remembered: no second token request while the store is as it was.
			if _, err := src.Token(ctx); !errors.Is(err, credentials.ErrLoginExpired) || requests.Load() != 1 {
				t.Fatalf("second Token = %v after %d token requests, want the remembered failure after 1", err, requests.Load())
			}
		})
	}
}

// The store's login is held to the same binding: auth.json that now holds
// another user of the same account is a permanent account_changed failure,
// not a token to adopt.
func TestRefreshStoreOfAnotherUserIsAccountChanged(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	home := t.TempDir()
	path := filepath.Join(home, credentials.AuthFileName)
	write := func(user, access string) {
		doc, _ := json.Marshal(map[string]any{
			"OPENAI_API_KEY": nil,
			"tokens": map[string]any{
				"id_token":      rvaJWT(rvaAuth("acct-MINE", user)),
				"access_token":  access,
				"refresh_token": "rt-" + user, "account_id": "acct-MINE"},
			"last_refresh": now.Format(time.RFC3339),
		})
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first := rvaJWT(rvaClaims(rvaAuth("acct-MINE", "user-mine"), now.Add(time.Hour)))
	write("user-mine", first)
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
		Coordinator: credentials.NewAuthFileCoordinator(home),
		TokenURL:    "https://auth.invalid/oauth/token", // never reached
		Getenv:      func(string) string { return "" },
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write("user-other", rvaJWT(rvaClaims(rvaAuth("acct-MINE", "user-other"), now.Add(time.Hour))))
	got, err := src.Refresh(ctx, tok)
	var re *credentials.RefreshError
	if !errors.As(err, &re) || re.Reason != credentials.ReasonAccountChanged {
		t.Fatalf("Refresh over another user's login = %v, %v; want account_changed", got, err)
	}
}
