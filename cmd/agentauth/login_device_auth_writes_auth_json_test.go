package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `agentauth login --device-auth` prints the URL and code, and after the
// approval writes an auth.json that loads as the ChatGPT login; `agentauth
// logout` then revokes it and removes it.
func TestLoginDeviceAuthThenLogout(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetDeviceCodeInterval(0)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"login", "--device-auth", "--codex-home", home, "--experimental_issuer", srv.URL()}, strings.NewReader(""), &out, &errb)
	}()
	codeRe := regexp.MustCompile(`(?m)^  ([A-Z0-9]{4}-[A-Z0-9]{5})$`)
	var code string
	for code == "" {
		if m := codeRe.FindStringSubmatch(out.String()); m != nil {
			code = m[1]
			break
		}
		select {
		case c := <-done:
			t.Fatalf("login exited %d before printing a code: %q %q", c, out.String(), errb.String())
		case <-ctx.Done():
			t.Fatal("no code printed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := srv.ApproveDeviceCode(code, identitytest.Login{AccountID: "acct-cli", UserID: "user-cli"}); err != nil {
		t.Fatal(err)
	}
	if c := <-done; c != exitOK {
		t.Fatalf("login exit %d: %q", c, errb.String())
	}
	c, err := credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: func(string) string { return "" }})
	if err != nil || c.Kind != credentials.KindChatGPT || c.ChatGPT.AccountID != "acct-cli" {
		t.Fatalf("Load = %v, %v", c, err)
	}
	for _, s := range []string{c.ChatGPT.AccessToken, c.ChatGPT.RefreshToken, c.ChatGPT.IDToken} {
		if strings.Contains(out.String()+errb.String(), s) {
			t.Error("login printed a token")
		}
	}

	r := runCmd(t, "", "logout", "--codex-home", home, "--experimental_issuer", srv.URL())
	if r.code != exitOK || !strings.Contains(r.stdout, "Logged out.") {
		t.Fatalf("logout = %+v", r)
	}
	if !srv.TokenRevoked(c.ChatGPT.RefreshToken) {
		t.Error("logout did not revoke the refresh token")
	}
	if _, err := os.Stat(filepath.Join(home, "auth.json")); !os.IsNotExist(err) {
		t.Errorf("auth.json left after logging out of a file holding only the login: %v", err)
	}
	r = runCmd(t, "", "logout", "--codex-home", home)
	if r.code != exitOK || !strings.Contains(r.stdout, "Not logged in.") {
		t.Fatalf("second logout = %+v", r)
	}
}

// login --help names every flow.
func TestLoginHelpListsFlows(t *testing.T) {
	r := runCmd(t, "", "login", "--help")
	for _, want := range []string{"--device-auth", "--no-browser", "browser", "logout", "OPENAI_IDENTITY_TOKEN_FILE", "--experimental_issuer"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("login --help lacks %q", want)
		}
	}
}
