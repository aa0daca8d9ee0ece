// A token answer is checked before it is stored. A 200 whose access token
// cannot be sent (control characters), that carries none, or whose
// id_token cannot be read is not written to auth.json (which would then
// fail to load in every later process) and does not move last_refresh
// (which would make a stale login look fresh for StaleAfter). Only its
// rotated refresh token is kept, because the endpoint has spent the old
// one, and the next refresh sends it.
package credentials_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

func TestRefreshDoesNotStoreAnUnusableAnswer(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	stale := start.Add(-9 * 24 * time.Hour)
	for _, tc := range []struct {
		name        string
		resp        map[string]any
		wantRefresh string // the refresh token auth.json must hold afterwards
	}{
		{"access token with a newline", map[string]any{"access_token": "at-bad\nvalue", "refresh_token": "rt-next"}, "rt-next"},
		{"no access token, no rotation", map[string]any{"id_token": "", "refresh_token": ""}, "rt-mine"},
		{"no access token, rotated", map[string]any{"refresh_token": "rt-next"}, "rt-next"},
		{"unreadable id_token", map[string]any{"id_token": "not-a-jwt", "access_token": "at-good", "refresh_token": "rt-next"}, "rt-next"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					RefreshToken string `json:"refresh_token"`
				}
				b, _ := io.ReadAll(r.Body)
				json.Unmarshal(b, &body)
				mu.Lock()
				sent = append(sent, body.RefreshToken)
				first := len(sent) == 1
				mu.Unlock()
				if first {
					json.NewEncoder(w).Encode(tc.resp)
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"access_token": "at-fixed", "refresh_token": "rt-after"})
			}))
			defer endpoint.Close()
			home := t.TempDir()
			path := filepath.Join(home, credentials.AuthFileName)
			doc, _ := json.Marshal(map[string]any{
				"OPENAI_API_KEY": nil,
				"tokens":         map[string]any{"id_token": "", "access_token": "opaque-access-token", "refresh_token": "rt-mine", "account_id": "acct-x"},
				"last_refresh":   stale.Format(time.RFC3339),
			})
			if err := os.WriteFile(path, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			var clockMu sync.Mutex
			now := start
			clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
			src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
				Coordinator: credentials.NewAuthFileCoordinator(home),
				TokenURL:    endpoint.URL + "/oauth/token",
				Getenv:      func(string) string { return "" },
				Now:         clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Stale with an unknown expiry: Token waits for the refresh, and
			// keeps serving the old token when the answer is unusable.
			tok, err := src.Token(ctx)
			if err != nil || tok.AccessToken != "opaque-access-token" {
				t.Fatalf("Token = %v, %v; want the old token while the answer is unusable", tok, err)
			}

			creds, err := credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: func(string) string { return "" }})
			if err != nil {
				t.Fatalf("after the refresh auth.json no longer loads: %v", err)
			}
			if got := creds.ChatGPT; got.AccessToken != "opaque-access-token" || got.IDToken != "" || got.RefreshToken != tc.wantRefresh {
				t.Fatalf("auth.json holds access %q id %q refresh %q; want the old access and id token and refresh %q",
					got.AccessToken, got.IDToken, got.RefreshToken, tc.wantRefresh)
			}
			if !creds.ChatGPT.LastRefresh.Equal(stale) {
				t.Fatalf("an unusable answer moved last_refresh from %v to %v", stale, creds.ChatGPT.LastRefresh)
			}

			// After the backoff the next refresh sends the refresh token
			// auth.json holds, and a usable answer is stored.
			clockMu.Lock()
			now = now.Add(2 * time.Minute)
			clockMu.Unlock()
			tok, err = src.Token(ctx)
			if err != nil || tok.AccessToken != "at-fixed" {
				t.Fatalf("Token after the backoff = %v, %v; want at-fixed", tok, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sent) != 2 || sent[1] != tc.wantRefresh {
				t.Fatalf("refresh tokens sent %q, want the second to be %q", sent, tc.wantRefresh)
			}
		})
	}
}
