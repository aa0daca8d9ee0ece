package login

import (
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

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// writeLogin writes a Codex-shaped login for l plus extra top-level members.
func writeLogin(t *testing.T, l *identitytest.Login, extra string) string {
	t.Helper()
	home := t.TempDir()
	doc := strings.TrimSuffix(strings.TrimSpace(string(l.AuthJSON(time.Now()))), "}")
	doc = strings.Replace(doc, "{", `{"auth_mode": "chatgpt",`, 1)
	if extra != "" {
		doc += "," + extra
	}
	doc += "}"
	if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// revokeRecorder is a revoke endpoint that records bodies and answers status.
type revokeRecorder struct {
	mu     sync.Mutex
	bodies []map[string]any
	status int
}

func (rr *revokeRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	v["originator header"] = r.Header.Get("originator")
	rr.mu.Lock()
	rr.bodies = append(rr.bodies, v)
	rr.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rr.status)
	_, _ = w.Write([]byte(`{"error":{"message":"revoke failed"}}`))
}

// Logout revokes the refresh token at the reference server, then removes
// the login and keeps a personal access token and unknown members.
func TestLogoutRevokesAndKeepsOtherMembers(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	l, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-out", UserID: "user-out"})
	if err != nil {
		t.Fatal(err)
	}
	home := writeLogin(t, l, `"personal_access_token": "at-kept", "future_member": {"x": 1}`)
	if err := Logout(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Getenv: env()}); err != nil {
		t.Fatal(err)
	}
	if !srv.TokenRevoked(l.RefreshToken) {
		t.Error("the refresh token was not revoked")
	}
	data, err := os.ReadFile(filepath.Join(home, "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	af, err := credentials.ParseAuthFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if af.Tokens != nil || af.AuthMode != "" || af.LastRefresh != nil {
		t.Errorf("the login is still in auth.json: %v", af)
	}
	if af.PersonalAccessToken != "at-kept" {
		t.Error("logout removed the personal access token")
	}
	if x, ok := af.Extra("future_member"); !ok || strings.Join(strings.Fields(string(x)), "") != `{"x":1}` {
		t.Errorf("logout lost an unknown member: %s", x)
	}
	if err := Logout(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Getenv: env()}); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout = %v, want ErrNotLoggedIn", err)
	}
}

// A failing revoke (at CODEX_REVOKE_TOKEN_URL_OVERRIDE) still logs out
// locally and says so; the body is Codex's, with the client id for a
// refresh token.
func TestLogoutRevokeFailureStillLogsOut(t *testing.T) {
	rr := &revokeRecorder{status: http.StatusInternalServerError}
	hs := httptest.NewServer(rr)
	defer hs.Close()
	srv := newServer(t, identitytest.Options{})
	l, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-f"})
	if err != nil {
		t.Fatal(err)
	}
	home := writeLogin(t, l, "")
	err = Logout(testCtx(t), Options{CodexHome: home, Getenv: env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", hs.URL+"/oauth/revoke")})
	if !errors.Is(err, ErrRevokeFailed) || !strings.Contains(err.Error(), "logged out locally") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v, want ErrRevokeFailed naming the local logout", err)
	}
	if strings.Contains(err.Error(), l.RefreshToken) {
		t.Error("the error carries the token")
	}
	if _, err := os.Stat(filepath.Join(home, "auth.json")); !os.IsNotExist(err) {
		t.Error("auth.json still exists after a local logout")
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.bodies) != 1 {
		t.Fatalf("revoke requests = %d, want 1", len(rr.bodies))
	}
	b := rr.bodies[0]
	if b["token"] != l.RefreshToken || b["token_type_hint"] != "refresh_token" || b["client_id"] != defaultClientID || b["originator header"] != "codex_cli_rs" || len(b) != 4 {
		t.Errorf("revoke body members = %d, hint %v, client %v", len(b), b["token_type_hint"], b["client_id"])
	}
}

// Without a refresh token the access token is revoked, without a client
// id; the endpoint derives from CODEX_REFRESH_TOKEN_URL_OVERRIDE.
func TestLogoutRevokesAccessTokenWithoutRefreshToken(t *testing.T) {
	rr := &revokeRecorder{status: http.StatusOK}
	hs := httptest.NewServer(rr)
	defer hs.Close()
	home := t.TempDir()
	doc := `{"auth_mode":"chatgpt","OPENAI_API_KEY":null,"tokens":{"id_token":"","access_token":"at-access-only","refresh_token":"","account_id":"acct-a"}}`
	if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Logout(testCtx(t), Options{CodexHome: home, Getenv: env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", hs.URL+"/oauth/token?x=1")}); err != nil {
		t.Fatal(err)
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.bodies) != 1 || rr.bodies[0]["token_type_hint"] != "access_token" || rr.bodies[0]["token"] != "at-access-only" {
		t.Fatalf("revoke bodies = %d", len(rr.bodies))
	}
	if _, ok := rr.bodies[0]["client_id"]; ok {
		t.Error("an access-token revoke carried a client id")
	}
}
