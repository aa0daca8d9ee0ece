package credentials

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// Two sources of one process over one auth.json (two transports, two
// agentauth.New calls): one rotates, then the Codex CLI saves a stale copy
// with the spent refresh token. The other source, which loaded the file
// before the rotation, takes the newest set instead of sending the spent
// token, and the stale copy is replaced.
func TestRefreshSourcesOfOneProcessShareNewestRotation(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	stale := e.authJSON()
	a, b := e.source(), e.source()
	for _, s := range []*RefreshingTokenSource{a, b} {
		if _, err := s.Token(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(61 * time.Minute)
	rotated, err := a.Token(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.home, AuthFileName), stale)

	tok, err := b.Token(testCtx(t))
	if err != nil {
		t.Fatalf("second source over the stale copy: %v", err)
	}
	if n := e.srv.Stats().RejectionsByReason[identitytest.CodeRefreshTokenReused]; n != 0 {
		t.Fatalf("the second source sent the spent refresh token of the stale copy (%d refresh_token_reused)", n)
	}
	if tok.AccessToken != rotated.AccessToken || b.TokenRequests() != 0 {
		t.Fatalf("second source: %d token requests, same token as the rotation: %v; want the rotation with none",
			b.TokenRequests(), tok.AccessToken == rotated.AccessToken)
	}
	if got := loadAuthFile(t, e.home).Tokens.AccessToken; got != rotated.AccessToken.Reveal() {
		t.Fatal("the stale copy was not replaced by the newest rotation")
	}
}
