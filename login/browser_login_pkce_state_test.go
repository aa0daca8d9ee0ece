package login

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// freePort returns a loopback port nothing listens on (it was just free).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// browser follows the authorize URL through its redirects, as a browser
// does, and returns the final page.
func browser(t *testing.T, page *string) func(string) error {
	return func(u string) error {
		c := &http.Client{}
		defer c.CloseIdleConnections()
		resp, err := c.Get(u)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		*page = string(b)
		return nil
	}
}

// The browser flow sends Codex's authorize parameters, passes the
// server's PKCE and state checks and writes the login (with the API key
// the token exchange gives) as Codex does.
func TestBrowserLoginWritesCodexAuthJSON(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetAuthorizeLogin(&identitytest.Login{AccountID: "acct-browser", UserID: "user-b"})
	home := t.TempDir()
	var page string
	out := newOut()
	port := freePort(t)
	err := Browser(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Port: port, Out: out, OpenBrowser: browser(t, &page), Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "Signed in") {
		t.Errorf("final page %q", page)
	}
	a := readCodexAuth(t, home, "acct-browser")
	if a.OpenAIAPIKey == nil || !strings.HasPrefix(*a.OpenAIAPIKey, "sk-test-") {
		t.Error("the API key from the token exchange was not written")
	}
	printed := out.String()
	i := strings.Index(printed, srv.URL()+"/oauth/authorize?")
	if i < 0 {
		t.Fatalf("authorize URL not printed: %q", printed)
	}
	u, err := url.Parse(strings.Fields(printed[i:])[0])
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"response_type": "code", "client_id": defaultClientID, "code_challenge_method": "S256",
		"redirect_uri":               "http://localhost:" + strconv.Itoa(port) + "/auth/callback",
		"scope":                      "openid profile email offline_access api.connectors.read api.connectors.invoke",
		"id_token_add_organizations": "true", "codex_cli_simplified_flow": "true", "originator": "codex_cli_rs",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorize %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !strings.Contains(u.RawQuery, "scope=openid%20profile%20email") || !strings.HasPrefix(u.RawQuery, "response_type=code&client_id=") {
		t.Errorf("authorize query is not encoded in Codex's order and style: %s", u.RawQuery)
	}
	if len(q.Get("state")) != 43 || len(q.Get("code_challenge")) != 43 {
		t.Error("state or code_challenge is not 32/32 bytes base64url")
	}
	for _, s := range []string{a.Tokens.AccessToken, a.Tokens.RefreshToken, *a.OpenAIAPIKey} {
		if strings.Contains(printed, s) {
			t.Error("a secret was printed")
		}
	}
}

// A callback with the wrong state is refused and does not end the login;
// /cancel then ends it with context.Canceled and nothing is written.
func TestBrowserLoginRefusesWrongStateThenCancels(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	var status int
	open := func(string) error {
		c := &http.Client{}
		defer c.CloseIdleConnections()
		resp, err := c.Get(base + "/auth/callback?code=ac_forged&state=wrong")
		if err != nil {
			return err
		}
		resp.Body.Close()
		status = resp.StatusCode
		resp, err = c.Get(base + "/cancel")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	home := t.TempDir()
	err := Browser(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Port: port, Out: newOut(), OpenBrowser: open, Getenv: env()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if status != http.StatusBadRequest {
		t.Errorf("wrong-state callback answered %d, want 400", status)
	}
	if _, err := readFileIfAny(home); err == nil {
		t.Error("auth.json written")
	}
}

// A user who declines gets the issuer's reason in one line.
func TestBrowserLoginDeclined(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	var page string
	err := Browser(testCtx(t), Options{CodexHome: t.TempDir(), Issuer: srv.URL(), Port: freePort(t), Out: newOut(), OpenBrowser: browser(t, &page), Getenv: env()})
	if err == nil || !strings.Contains(err.Error(), "Sign-in failed") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
}

// A port held by another program gives ErrPortInUse.
func TestBrowserLoginPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	defer func() { hs.Close(); <-done }()
	port := ln.Addr().(*net.TCPAddr).Port
	err = Browser(testCtx(t), Options{CodexHome: t.TempDir(), Issuer: "http://127.0.0.1:1", Port: port, Out: newOut(), Getenv: env()})
	if !errors.Is(err, ErrPortInUse) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want ErrPortInUse", err)
	}
}

// A login nobody finishes ends at the context's deadline with context.DeadlineExceeded;
// a cancelled one with context.Canceled.
func TestBrowserLoginTimesOutOrIsCancelled(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Browser(ctx, Options{CodexHome: t.TempDir(), Issuer: srv.URL(), Port: freePort(t), Out: newOut(), Getenv: env()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	ctx2, cancel2 := contextWithCancel(t)
	open := func(string) error { cancel2(); return nil }
	err = Browser(ctx2, Options{CodexHome: t.TempDir(), Issuer: srv.URL(), Port: freePort(t), Out: newOut(), OpenBrowser: open, Getenv: env()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
