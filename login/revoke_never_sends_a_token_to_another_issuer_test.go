package login

import (
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
)

// offlineOpenAI is a RoundTripper that records every revoke request's
// endpoint, sends loopback requests and fails, without sending, those to
// any other host (such as auth.openai.com), so no test reaches the network.
type offlineOpenAI struct {
	mu      sync.Mutex
	revokes []string
}

func (o *offlineOpenAI) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/revoke") {
		o.mu.Lock()
		o.revokes = append(o.revokes, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
		o.mu.Unlock()
	}
	if req.URL.Hostname() != "127.0.0.1" {
		return nil, errors.New("offline")
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (o *offlineOpenAI) sent() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.revokes...)
}

// openAIIDToken is an unsigned id token that says auth.openai.com issued it.
func openAIIDToken() string {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return seg(`{"alg":"RS256"}`) + "." +
		seg(`{"iss":"https://auth.openai.com","https://api.openai.com/auth":{"chatgpt_account_id":"acct-real"}}`) + ".sig"
}

// writeOpenAILogin writes auth.json holding a login auth.openai.com issued.
func writeOpenAILogin(t *testing.T, refreshToken string) string {
	t.Helper()
	home := t.TempDir()
	doc := `{"auth_mode":"chatgpt","tokens":{"id_token":"` + openAIIDToken() + `","access_token":"at-real","refresh_token":"` +
		refreshToken + `","account_id":"acct-real"},"last_refresh":"2026-01-01T00:00:00Z"}`
	if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// Signing in at an overridden issuer must not hand the previous login's
// refresh token, which auth.openai.com issued, to that issuer's revoke
// route: Codex revokes it at auth.openai.com, and so must a login here.
func TestLoginAtAnotherIssuerDoesNotSendItThePreviousRefreshToken(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetDeviceCodeInterval(0)
	const oldRefresh = "rt-real-openai-refresh-token"
	home := writeOpenAILogin(t, oldRefresh)
	net := &offlineOpenAI{}
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Out: out, Getenv: env(),
			HTTPClient: &http.Client{Transport: net}})
	}()
	if err := srv.ApproveDeviceCode(out.await(t, userCodeLine), identitytest.Login{AccountID: "acct-new"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(net.sent(), " "); got != defaultRevokeURL {
		t.Errorf("revoke requests went to %q, want %s only", got, defaultRevokeURL)
	}
}

// Logout with an issuer override revokes a token auth.openai.com issued at
// auth.openai.com, never at the overriding issuer.
func TestLogoutWithAnotherIssuerDoesNotSendItTheRefreshToken(t *testing.T) {
	home := writeOpenAILogin(t, "rt-real-openai-refresh-token")
	net := &offlineOpenAI{}
	err := Logout(testCtx(t), Options{CodexHome: home, Issuer: "https://attacker.example", Getenv: env(), HTTPClient: &http.Client{Transport: net}})
	if !errors.Is(err, ErrRevokeFailed) { // auth.openai.com is "offline" here
		t.Fatalf("Logout = %v, want ErrRevokeFailed from the offline default endpoint", err)
	}
	if got := strings.Join(net.sent(), " "); got != defaultRevokeURL {
		t.Errorf("revoke requests went to %q, want %s only", got, defaultRevokeURL)
	}
}
