package credentials

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// Everything a refresh needs is in members the Codex CLI keeps: after a
// refresh, auth.json re-encoded in Codex's schema (every other member
// dropped) yields the same token set, and a new source refreshes from it.
func TestRefreshStateSurvivesCodexRewrite(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	path := filepath.Join(e.home, AuthFileName)
	s := e.source()
	e.clock.Advance(61 * time.Minute)
	if _, err := s.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := NewAuthFileCoordinator(e.home).Load(testCtx(t))
	if err != nil || before == nil {
		t.Fatal(err)
	}
	var doc codexAuthDotJSON
	if err := json.Unmarshal(e.authJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := NewAuthFileCoordinator(e.home).Load(testCtx(t))
	if err != nil || after == nil {
		t.Fatal(err)
	}
	if fingerprint(after) != fingerprint(before) || after.AccountID != before.AccountID || !after.LastRefresh.Equal(before.LastRefresh) {
		t.Fatalf("a Codex rewrite changed the token set: %v, want %v", after, before)
	}
	e.clock.Advance(61 * time.Minute)
	if _, err := e.source().Token(testCtx(t)); err != nil {
		t.Fatalf("refresh after a Codex rewrite: %v", err)
	}
}
