package login

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

var userCodeLine = regexp.MustCompile(`(?m)^  ([A-Z0-9]{4}-[A-Z0-9]{5})$`)

// The device-code flow prints the URL and code, polls through pending
// answers, and writes the login as Codex writes it.
func TestDeviceCodeLoginWritesCodexAuthJSON(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetDeviceCodeInterval(0)
	home := t.TempDir()
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Out: out, Getenv: env()})
	}()
	code := out.await(t, userCodeLine)
	if !strings.Contains(out.String(), srv.URL()+"/codex/device") {
		t.Errorf("output lacks the verification URL: %q", out.String())
	}
	if err := srv.ApproveDeviceCode(code, identitytest.Login{AccountID: "acct-device", UserID: "user-device", Email: "d@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a := readCodexAuth(t, home, "acct-device")
	if a.OpenAIAPIKey != nil {
		t.Error("the device flow wrote an API key; Codex writes null")
	}
	if srv.TokenRevoked(a.Tokens.RefreshToken) {
		t.Error("the new login's refresh token is revoked")
	}
	// The code is spent: approving it again fails.
	if err := srv.ApproveDeviceCode(code, identitytest.Login{AccountID: "x"}); err == nil {
		t.Error("a spent device code could be approved again")
	}
	for _, secret := range []string{a.Tokens.AccessToken, a.Tokens.RefreshToken, a.Tokens.IDToken} {
		if strings.Contains(out.String(), secret) {
			t.Error("a token was printed")
		}
	}
}

// The client id comes from CODEX_APP_SERVER_LOGIN_CLIENT_ID when the
// options do not set one; the server refuses any other.
func TestDeviceCodeHonoursClientIDOverride(t *testing.T) {
	srv := newServer(t, identitytest.Options{OAuthClientID: "app_custom"})
	srv.SetDeviceCodeInterval(0)
	err := DeviceCode(testCtx(t), Options{CodexHome: t.TempDir(), Issuer: srv.URL(), Out: newOut(), Getenv: env()})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("default client id against a custom server: %v", err)
	}
	home := t.TempDir()
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(testCtx(t), Options{CodexHome: home, Issuer: srv.URL() + "/", Out: out,
			Getenv: env("CODEX_APP_SERVER_LOGIN_CLIENT_ID", "app_custom")})
	}()
	if err := srv.ApproveDeviceCode(out.await(t, userCodeLine), identitytest.Login{AccountID: "acct-c"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	readCodexAuth(t, home, "acct-c")
}

// A device code that expires unapproved ends the login with context.DeadlineExceeded,
// and nothing is written.
func TestDeviceCodeExpires(t *testing.T) {
	var offset atomic.Int64
	srv := newServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	srv.SetDeviceCodeInterval(0)
	home := t.TempDir()
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Out: out, Getenv: env()})
	}()
	out.await(t, userCodeLine)
	offset.Store(int64(identitytest.DeviceCodeLifetime + time.Second))
	err := <-done
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if _, statErr := readFileIfAny(home); statErr == nil {
		t.Error("auth.json written for an expired code")
	}
}

// A cancelled context ends the polling with context.Canceled.
func TestDeviceCodeCancelled(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetDeviceCodeInterval(0)
	ctx, cancel := contextWithCancel(t)
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(ctx, Options{CodexHome: t.TempDir(), Issuer: srv.URL(), Out: out, Getenv: env()})
	}()
	out.await(t, userCodeLine)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
