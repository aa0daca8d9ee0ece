// The refresh request carries the login's single-use refresh token, so it
// goes to the configured token endpoint and nowhere else: a redirect is
// never followed (307/308 would re-send the body to the Location origin,
// 302/303 would turn the refresh into a GET whose 200 answer would be
// taken for tokens), and an endpoint that is plain http on a remote host
// is refused when the source is built.
package credentials_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

func rvrJWT(claims map[string]any) string {
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(p) + ".sig"
}

func TestRefreshTokenNeverFollowsARedirect(t *testing.T) {
	const refreshToken = "rt-SECRET-redirect-0001"
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	auth := map[string]any{"chatgpt_account_id": "acct-redir", "chatgpt_user_id": "user-redir"}
	expired := rvrJWT(map[string]any{"exp": now.Add(-time.Minute).Unix(), "https://api.openai.com/auth": auth})
	fresh := rvrJWT(map[string]any{"exp": now.Add(time.Hour).Unix(), "https://api.openai.com/auth": auth})

	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusSeeOther} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			// The other origin collects whatever reaches it and answers a
			// GET with tokens, as an attacker's server would.
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
				mu.Lock()
				seen = append(seen, r.Method+" "+string(b))
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]string{"access_token": fresh, "refresh_token": "rt-attacker"})
			}))
			defer other.Close()
			endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, other.URL+"/collect", status)
			}))
			defer endpoint.Close()

			home := t.TempDir()
			doc, _ := json.Marshal(map[string]any{
				"OPENAI_API_KEY": nil,
				"tokens": map[string]any{"id_token": rvrJWT(map[string]any{"https://api.openai.com/auth": auth}),
					"access_token": expired, "refresh_token": refreshToken, "account_id": "acct-redir"},
				"last_refresh": now.Add(-time.Hour).Format(time.RFC3339),
			})
			if err := os.WriteFile(filepath.Join(home, credentials.AuthFileName), doc, 0o600); err != nil {
				t.Fatal(err)
			}
			// A caller's client that would follow redirects: the source
			// must not, and must leave the caller's client as it was.
			client := &http.Client{}
			src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
				Coordinator: credentials.NewAuthFileCoordinator(home),
				TokenURL:    endpoint.URL + "/oauth/token",
				HTTPClient:  client,
				Getenv:      func(string) string { return "" },
				Now:         func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if client.CheckRedirect != nil {
				t.Error("the caller's http.Client was modified")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := src.Token(ctx)
			var re *credentials.RefreshError
			if !errors.As(err, &re) || re.Permanent || re.Status != status {
				t.Errorf("Token = %v, %v; want a temporary *RefreshError with status %d", tok, err, status)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 0 {
				t.Fatalf("the refresh request followed a redirect to another origin: %d request(s) there (refresh token among them: %v)",
					len(seen), strings.Contains(strings.Join(seen, "\n"), refreshToken))
			}
			data, _ := os.ReadFile(filepath.Join(home, credentials.AuthFileName))
			if strings.Contains(string(data), "rt-attacker") {
				t.Fatal("the answer of the redirect target was stored")
			}
		})
	}
}

func TestRefreshTokenURLMustBeHTTPSOrLoopback(t *testing.T) {
	coord := credentials.NewAuthFileCoordinator(t.TempDir())
	for _, tc := range []struct {
		url, env string
		ok       bool
	}{
		{url: "https://auth.example.com/oauth/token", ok: true},
		{url: "http://127.0.0.1:8080/oauth/token", ok: true},
		{url: "http://[::1]:8080/oauth/token", ok: true},
		{url: "http://localhost/oauth/token", ok: true},
		{env: "https://auth.example.com/oauth/token", ok: true},
		{url: "http://auth.example.com/oauth/token"},
		{url: "http://10.0.0.7:8080/oauth/token"},
		{env: "http://auth.example.com/oauth/token"},
		{url: "ftp://auth.example.com/oauth/token"},
		{url: "/oauth/token"},
		{url: "auth.example.com/oauth/token"},
	} {
		src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
			Coordinator: coord,
			TokenURL:    tc.url,
			Getenv: func(k string) string {
				if k == credentials.EnvRefreshTokenURL {
					return tc.env
				}
				return ""
			},
		})
		if tc.ok {
			if err != nil {
				t.Errorf("url %q env %q: %v", tc.url, tc.env, err)
			} else {
				src.Close()
			}
			continue
		}
		if !errors.Is(err, credentials.ErrInsecureTokenURL) {
			t.Errorf("url %q env %q: err = %v, want ErrInsecureTokenURL", tc.url, tc.env, err)
		}
	}
}
