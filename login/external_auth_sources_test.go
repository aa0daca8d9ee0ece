package login

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func runs(t *testing.T, counter string) int {
	t.Helper()
	b, _ := os.ReadFile(counter)
	return strings.Count(string(b), "x")
}

// The command's token is cached for the refresh interval and rerun by
// Refresh; a JWT's exp shortens the cache.
func TestCommandTokenSourceCachesUntilExpiry(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	p := script(t, `printf x >> "`+counter+`"; echo "  tok-$(wc -c < "`+counter+`" | tr -d ' ')  "`)
	ts, err := CommandTokenSource([]string{p}, dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	src := ts.(*commandSource)
	var offset atomic.Int64
	src.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a, err := src.Token(testCtx(t))
	if err != nil || a.AccessToken.Reveal() != "tok-1" {
		t.Fatalf("Token = %v, %v", a, err)
	}
	if b, _ := src.Token(testCtx(t)); b != a || runs(t, counter) != 1 {
		t.Fatalf("not cached: %d runs", runs(t, counter))
	}
	offset.Store(int64(defaultCommandRefreshInterval + time.Second))
	if b, err := src.Token(testCtx(t)); err != nil || b.AccessToken.Reveal() != "tok-2" {
		t.Fatalf("after the refresh interval: %v, %v", b, err)
	}
	c, err := src.Refresh(testCtx(t), src.cur)
	if err != nil || c.AccessToken.Reveal() != "tok-3" {
		t.Fatalf("Refresh = %v, %v", c, err)
	}

	// A JWT expiring in 60 s is reused only until 30 s before its exp.
	exp := time.Now().Add(60 * time.Second).Unix()
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":` + strconv.FormatInt(exp, 10) + `,"https://api.openai.com/auth":{"chatgpt_account_id":"acct-cmd"}}`))
	jwtScript := script(t, `printf x >> "`+counter+`.jwt"; echo "e30.`+payload+`.sig"`)
	ts, _ = CommandTokenSource([]string{jwtScript}, "", 0, 0)
	js := ts.(*commandSource)
	js.now = src.now
	offset.Store(0)
	tok, err := js.Token(testCtx(t))
	if err != nil || tok.AccountID != "acct-cmd" {
		t.Fatalf("JWT token = %v, %v", tok, err)
	}
	offset.Store(int64(31 * time.Second))
	if _, err := js.Token(testCtx(t)); err == nil || runs(t, counter+".jwt") != 2 {
		t.Fatalf("JWT past exp-30s: err %v, runs %d (want a rerun that finds it expired)", err, runs(t, counter+".jwt"))
	}
}

// A failing, silent or slow command gives a one-line error without its
// output.
func TestCommandTokenSourceFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		body    string
		timeout time.Duration
		want    string
	}{
		"exit":    {`echo secret-output; echo secret-err >&2; exit 3`, 0, "exited with status 3"},
		"empty":   {`echo "   "`, 0, "empty token"},
		"spaces":  {`echo "two words"`, 0, "spaces or control characters"},
		"timeout": {`sleep 5`, 100 * time.Millisecond, "timed out"},
	} {
		ts, err := CommandTokenSource([]string{script(t, tc.body)}, "", tc.timeout, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.Token(testCtx(t))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if _, err := CommandTokenSource(nil, "", 0, 0); err == nil {
		t.Error("an empty command was accepted")
	}
}

// CallerHeaders sends the caller's headers and refuses bad ones; its
// String shows names only.
func TestCallerHeaders(t *testing.T) {
	var got http.Header
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer hs.Close()
	rt, err := CallerHeaders(nil, http.Header{"Authorization": {"Bearer caller-secret"}, "ChatGPT-Account-ID": {"acct-h"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: rt}
	defer c.CloseIdleConnections()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	resp, err := c.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("Authorization") != "Bearer caller-secret" || got.Get("ChatGPT-Account-ID") != "acct-h" {
		t.Errorf("headers sent: %v", got)
	}
	if s := fmt.Sprint(rt); strings.Contains(s, "caller-secret") {
		t.Errorf("String shows a value: %s", s)
	}
	for _, bad := range []http.Header{{"X-A": {"v\r\nInjected: 1"}}, {"Bad Name": {"v"}}, {"Host": {"evil"}}} {
		if _, err := CallerHeaders(nil, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
