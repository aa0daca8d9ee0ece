package redisstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// The fleet's login is revoked: every refresh fails for good. After the
// user logs in again (codex login) and a replica restarts with the new
// auth.json, its seed, issued after the dead set, replaces it, and a
// replica still running picks it up once it looks at the store again.
func TestNewerLoginReplacesARevokedSet(t *testing.T) {
	addr := redisAddr(t)
	sealer := newSealer(t, newKey(t))
	opts := Options{LoginPrefix: uniquePrefix(t)}
	login := credentials.Login{AccountID: "acct-revoked", UserID: "user-revoked"}
	dead := testTokenSet("revoked", 0, -time.Minute) // expired, and its refresh token revoked
	revoked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"refresh_token_invalidated"}}`))
	}))
	defer revoked.Close()
	running := coordinator(t, newSealedStore(t, addr, sealer, opts), login, CoordinatorOptions{Initial: dead})
	defer running.Close()
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{Coordinator: running, TokenURL: revoked.URL + "/oauth/token",
		HTTPClient: revoked.Client(), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	if _, err := src.Token(ctx); !errors.Is(err, credentials.ErrLoginExpired) {
		t.Fatalf("revoked login: %v, want ErrLoginExpired", err)
	}

	fresh := testTokenSet("revoked", 5, time.Hour) // codex login: issued after the dead set
	restarted := coordinator(t, newSealedStore(t, addr, sealer, opts), login, CoordinatorOptions{Initial: fresh})
	defer restarted.Close()
	if got, err := restarted.Load(ctx); err != nil || !sameSet(got, fresh) {
		t.Fatalf("the restarted replica uses the dead set: %v", err)
	}
	waitUntil(t, 10*time.Second, "the running replica to pick up the new login", func() bool {
		tok, err := src.Token(ctx)
		return err == nil && tok.AccessToken.Reveal() == fresh.AccessToken
	})
}

// Store.ResetLogin clears a login's fleet token state, so a seed that is
// not newer than the fleet's set (an auth.json restored from a backup)
// seeds the fleet again.
func TestResetLoginLetsAnySeedWin(t *testing.T) {
	addr := redisAddr(t)
	sealer := newSealer(t, newKey(t))
	opts := Options{LoginPrefix: uniquePrefix(t)}
	s := newSealedStore(t, addr, sealer, opts)
	login := credentials.Login{AccountID: "acct-reset", UserID: "user-reset"}
	newer, older := testTokenSet("reset", 3, time.Hour), testTokenSet("reset", 1, time.Hour)
	ctx := context.Background()
	if _, err := coordinator(t, s, login, CoordinatorOptions{Initial: newer}).Load(ctx); err != nil {
		t.Fatal(err)
	}
	c := coordinator(t, s, login, CoordinatorOptions{Initial: older})
	if got, err := c.Load(ctx); err != nil || !sameSet(got, newer) {
		t.Fatalf("before the reset: %v", err)
	}
	if err := s.ResetLogin(ctx, login, older); err != nil {
		t.Fatal(err)
	}
	if n, err := newClient(t, addr).Keys(ctx, opts.LoginPrefix+"*").Result(); err != nil || len(n) != 0 {
		t.Fatalf("keys left after the reset: %d, %v", len(n), err)
	}
	again := coordinator(t, s, login, CoordinatorOptions{Initial: older})
	if got, err := again.Load(ctx); err != nil || !sameSet(got, older) {
		t.Fatalf("after the reset the seed did not win: %v", err)
	}
}
