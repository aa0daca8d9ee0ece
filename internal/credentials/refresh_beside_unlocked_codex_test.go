package credentials

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// Refreshing sources beside a Codex CLI that saves auth.json at any
// moment (unlocked, in place, slowly now and then, and now and then a
// stale copy holding the previous refresh token) with access tokens that
// live 2 s: no request fails, the endpoint never sees a spent refresh
// token (refresh_token_reused), and after the CLI stops and the sources
// close, the login in auth.json still refreshes.
func TestRefreshBesideUnlockedCodexNeverSendsSpentToken(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{TokenLifetime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-codex", UserID: "user-codex"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Two sources, as two transports of one process hold: each loaded the
	// file before the other's rotations.
	var sources [2]*RefreshingTokenSource
	for i := range sources {
		s, err := NewRefreshingTokenSource(RefreshOptions{
			Coordinator: NewAuthFileCoordinator(home),
			TokenURL:    srv.TokenURL(),
			Getenv:      fakeEnv(nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sources[i] = s
	}
	w := startCodexCLIWriter(t, home, 4)
	var requests, failed int
	var firstErr error
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
		requests++
		tok, err := sources[i%2].Token(testCtx(t))
		if err == nil {
			err = expiredByItsClaims(tok)
		}
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	w.stopAndWait()
	t.Logf("%d requests, %d token exchanges, Codex saves: %d (%d stale copies, %d slow)",
		requests, srv.Stats().TokenRefreshes, w.saves.Load(), w.staleSaves.Load(), w.slowSaves.Load())
	if w.staleSaves.Load() == 0 || srv.Stats().TokenRefreshes < 2 {
		t.Fatalf("the soak did not exercise stale copies across rotations (%d stale saves, %d exchanges)", w.staleSaves.Load(), srv.Stats().TokenRefreshes)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed; first: %v", failed, requests, firstErr)
	}
	if n := srv.Stats().RejectionsByReason[identitytest.CodeRefreshTokenReused]; n != 0 {
		t.Errorf("the token endpoint saw %d spent refresh tokens (refresh_token_reused)", n)
	}

	// The CLI's last save is a stale copy: Close puts the newest rotation
	// back, so the next process does not start from a spent refresh token.
	w.load()
	if !w.saveStale(false) {
		t.Fatal("no stale copy to save")
	}
	sources[0].Close()
	sources[1].Close()
	af, err := NewFileStore(filepath.Join(home, AuthFileName)).Load()
	if err != nil || af.Tokens == nil {
		t.Fatalf("auth.json after Close: %v", err)
	}
	if code := exchangeStatus(t, srv, af.Tokens.RefreshToken); code != 200 {
		t.Fatalf("the refresh token auth.json holds after Close is dead (HTTP %d): the login was lost", code)
	}
}

// expiredByItsClaims fails for a token whose exp has passed: a source must
// never hand one out.
func expiredByItsClaims(tok *Token) error {
	// A second of slack: the source judged the token at an earlier
	// moment than this check, and a loaded machine may stall in between.
	exp := accessTokenClaims(tok.AccessToken.Reveal()).Expiry
	if !exp.IsZero() && time.Now().After(exp.Add(time.Second)) {
		return errors.New("the source returned an expired access token")
	}
	return nil
}

// exchangeStatus sends one refresh of rt and returns the HTTP status.
func exchangeStatus(t *testing.T, srv *identitytest.Server, rt string) int {
	t.Helper()
	body := `{"client_id":"` + DefaultClientID + `","grant_type":"refresh_token","refresh_token":"` + rt + `"}`
	resp, err := http.Post(srv.TokenURL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
