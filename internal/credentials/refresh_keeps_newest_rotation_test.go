package credentials

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// A Codex CLI that saves the auth.json it loaded before our rotation puts
// the spent refresh token back. The next refresh sends the newest one the
// source holds, never the spent one, and writes the newest set back.
func TestRefreshStaleCopyWithSpentTokenIsWrittenBack(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	stale := e.authJSON()
	s := e.source()
	e.clock.Advance(61 * time.Minute)
	first, err := s.Token(testCtx(t)) // rotation 1: the file's refresh token is spent
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.home, AuthFileName), stale) // the CLI's stale copy

	e.clock.Advance(61 * time.Minute)
	second, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatalf("refresh over a stale copy: %v", err)
	}
	if second.AccessToken == first.AccessToken || s.TokenRequests() != 2 {
		t.Fatalf("no new rotation (%d token requests)", s.TokenRequests())
	}
	if n := e.srv.Stats().RejectionsByReason[identitytest.CodeRefreshTokenReused]; n != 0 {
		t.Fatalf("the spent refresh token of the stale copy was sent (%d refresh_token_reused)", n)
	}
	af := loadAuthFile(t, e.home)
	if af.Tokens.AccessToken != second.AccessToken.Reveal() {
		t.Fatal("auth.json does not hold the newest rotation")
	}
}

// A stale copy the source never held, issued before the set it holds, is
// not adopted (not even after a 401) and its refresh token is not sent.
func TestRefreshOlderSetInStoreIsNotAdopted(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	old := *e.login
	e.clock.Advance(time.Minute)
	newer, err := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := newer.WriteAuthJSON(e.home, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	s := e.source()
	if tok, err := s.Token(testCtx(t)); err != nil || tok.AccessToken.Reveal() != newer.AccessToken {
		t.Fatalf("first load: %v", err)
	}
	if err := old.WriteAuthJSON(e.home, e.clock.Now()); err != nil { // older iat, unknown refresh token
		t.Fatal(err)
	}
	// A 401 of the held token: the store's different but older token is
	// not the answer.
	e.clock.Advance(10 * time.Minute)
	tok, origin, err := s.RefreshWithOrigin(testCtx(t), &Token{AccessToken: identity.Secret(newer.AccessToken)})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken.Reveal() == old.AccessToken || origin != RefreshFromEndpoint {
		t.Fatalf("after a 401 the source took the older token from the store (origin %v)", origin)
	}
	if code := exchangeStatus(t, e.srv, old.RefreshToken); code != 200 {
		t.Fatalf("the older set's refresh token was sent by the source (it answers %d now)", code)
	}
	if af := loadAuthFile(t, e.home); af.Tokens.AccessToken != tok.AccessToken.Reveal() {
		t.Fatal("auth.json does not hold the newest rotation")
	}
}

// A file that moved to a newer set than the source's (another process
// refreshed) is adopted with no token request.
func TestRefreshNewerSetInStoreIsAdopted(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	s := e.source()
	if _, err := s.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	newer, err := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := newer.WriteAuthJSON(e.home, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok, origin, err := s.RefreshWithOrigin(testCtx(t), nil)
	if err != nil || tok.AccessToken.Reveal() != newer.AccessToken || origin != RefreshFromStore || s.TokenRequests() != 0 {
		t.Fatalf("RefreshWithOrigin = %v, %v, %v after %d token requests; want the store's newer token and none", tok, origin, err, s.TokenRequests())
	}
}

// A file caught while the Codex CLI writes it in place (truncated, then
// written) for longer than the old 20 ms retry is read once complete.
func TestAuthFileLoadWaitsOutSlowInPlaceWrite(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	path := filepath.Join(e.home, AuthFileName)
	full := e.authJSON()
	writeFile(t, path, full[:len(full)/2])
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, _ = f.Write(full[len(full)/2:])
			f.Close()
		}
	}()
	set, err := NewAuthFileCoordinator(e.home).Load(testCtx(t))
	<-done
	if err != nil || set == nil || set.AccessToken != e.login.AccessToken {
		t.Fatalf("Load during a 300 ms in-place write: %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadAuthFile(t *testing.T, home string) *AuthFile {
	t.Helper()
	af, err := NewFileStore(filepath.Join(home, AuthFileName)).Load()
	if err != nil || af.Tokens == nil {
		t.Fatalf("auth.json: %v", err)
	}
	return af
}
