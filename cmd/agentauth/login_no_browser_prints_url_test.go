package main

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// `agentauth login --no-browser` prints the authorize URL and finishes
// when a browser (here, a client following redirects) completes it.
func TestLoginNoBrowserPrintsURLAndCompletes(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetAuthorizeLogin(&identitytest.Login{AccountID: "acct-nb", UserID: "user-nb"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"login", "--no-browser", "--port", strconv.Itoa(port), "--codex-home", home, "--experimental_issuer", srv.URL()},
			strings.NewReader(""), &out, &errb)
	}()
	urlRe := regexp.MustCompile(`(?m)^  (http://\S+/oauth/authorize\?\S+)$`)
	var authURL string
	for authURL == "" {
		if m := urlRe.FindStringSubmatch(out.String()); m != nil {
			authURL = m[1]
			break
		}
		select {
		case c := <-done:
			t.Fatalf("login exited %d: %q", c, errb.String())
		case <-ctx.Done():
			t.Fatal("no URL printed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	c := &http.Client{}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	if code := <-done; code != exitOK {
		t.Fatalf("login exit %d: %q", code, errb.String())
	}
	cr, err := credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: func(string) string { return "" }})
	if err != nil || cr.Kind != credentials.KindChatGPT || cr.ChatGPT.AccountID != "acct-nb" {
		t.Fatalf("Load = %v, %v", cr, err)
	}
	if strings.Contains(out.String(), cr.ChatGPT.AccessToken) || strings.Contains(out.String(), cr.APIKey) && cr.APIKey != "" {
		t.Error("a secret was printed")
	}
}
