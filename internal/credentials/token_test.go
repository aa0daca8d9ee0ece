package credentials

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestStaticTokenSource(t *testing.T) {
	ctx := testCtx(t)
	ts := StaticTokenSource(Token{AccessToken: "at-1", AccountID: "acct", FedRAMP: true})
	tok, err := ts.Token(ctx)
	if err != nil || tok.AccessToken != "at-1" || tok.AccountID != "acct" || !tok.FedRAMP {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	// One validated token, the same pointer every time, so a transport can
	// cache the header it built from it.
	if again, _ := ts.Token(ctx); again != tok {
		t.Error("a static source returned a different *Token on the second call")
	}
	if _, ok := ts.(Refresher); ok {
		t.Error("a static source must not claim to refresh")
	}
	for _, bad := range []Token{{}, {AccessToken: "at\r\nX: y"}, {AccessToken: "ok", AccountID: "a\nb"}} {
		if _, err := StaticTokenSource(bad).Token(ctx); err == nil {
			t.Errorf("invalid token %v accepted", bad)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ts.Token(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func writeAccessToken(t *testing.T, path, token string) {
	t.Helper()
	if err := NewFileStore(path).Update(testCtx(t), func(af *AuthFile) error {
		af.Tokens.AccessToken = token
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestFileTokenSource(t *testing.T) {
	ctx := testCtx(t)
	home := homeWith(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	ts := NewFileTokenSource(path)
	r, ok := ts.(Refresher)
	if !ok {
		t.Fatal("file token source is not a Refresher")
	}

	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != fixtureAccessToken || tok.AccountID != "acct-claim-123" || !tok.FedRAMP {
		t.Fatalf("Token = %v", tok)
	}

	// An unchanged file is not re-read: replace the content in place with
	// a same-size token and restore the mtime; the cached token stays.
	fi, _ := os.Stat(path)
	data, _ := os.ReadFile(path)
	sameSize := strings.Replace(string(data), fixtureAccessToken, "at-SECRET-access-XXXX", 1)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(sameSize), 0)
	f.Close()
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if tok, _ := ts.Token(ctx); tok.AccessToken != fixtureAccessToken {
		t.Errorf("unchanged stat but file re-read: %v", tok)
	}

	// Refresh forces a read, so it sees the in-place change.
	fresh, err := r.Refresh(ctx, tok)
	if err != nil || fresh.AccessToken != "at-SECRET-access-XXXX" {
		t.Fatalf("Refresh = %v, %v", fresh, err)
	}
	// Refresh with nothing new on disk fails.
	if _, err := r.Refresh(ctx, fresh); !errors.Is(err, ErrTokenUnchanged) {
		t.Errorf("Refresh of an unchanged file: err = %v, want ErrTokenUnchanged", err)
	}

	// A rewrite (what the Codex CLI does on refresh) is picked up by Token.
	writeAccessToken(t, path, "at-rotated-2")
	if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != "at-rotated-2" {
		t.Fatalf("after rewrite: %v, %v", tok, err)
	}
	writeAccessToken(t, path, "at-rotated-3")
	if tok, err := r.Refresh(ctx, &Token{AccessToken: "at-rotated-2"}); err != nil || tok.AccessToken != "at-rotated-3" {
		t.Fatalf("Refresh after rewrite: %v, %v", tok, err)
	}
}

func TestFileTokenSourceErrors(t *testing.T) {
	ctx := testCtx(t)
	missing := NewFileTokenSource(filepath.Join(t.TempDir(), AuthFileName))
	if _, err := missing.Token(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for _, fixture := range []string{"apikey.json", "agent_identity.json", "null_api_key.json"} {
		ts := NewFileTokenSource(filepath.Join(homeWith(t, fixture), AuthFileName))
		_, err := ts.Token(ctx)
		if !errors.Is(err, ErrNoChatGPTLogin) {
			t.Errorf("%s: err = %v, want ErrNoChatGPTLogin", fixture, err)
		}
	}
	ts := NewFileTokenSource(filepath.Join(homeWith(t, "access_token_newline.json"), AuthFileName))
	if _, err := ts.Token(ctx); err == nil {
		t.Error("token with CRLF accepted")
	} else {
		assertNoSecret(t, "error", err.Error())
	}
	// A file that disappears after a good read is an error, not a stale token.
	home := homeWith(t, "chatgpt.json")
	ts = NewFileTokenSource(filepath.Join(home, AuthFileName))
	if _, err := ts.Token(ctx); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(home, AuthFileName))
	if _, err := ts.Token(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed file: %v", err)
	}
}

func TestFileTokenSourceConcurrent(t *testing.T) {
	ctx := testCtx(t)
	home := homeWith(t, "chatgpt.json")
	path := filepath.Join(home, AuthFileName)
	ts := NewFileTokenSource(path)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := ts.Token(ctx)
				if err != nil || !strings.HasPrefix(tok.AccessToken.Reveal(), "at-") {
					t.Errorf("concurrent Token: %v, %v", tok, err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		writeAccessToken(t, path, "at-gen-"+string(rune('a'+i)))
	}
	close(stop)
	wg.Wait()
	if tok, _ := ts.Token(ctx); tok.AccessToken != "at-gen-t" {
		t.Errorf("final token %v", tok)
	}
}

// countingSource returns a new token on every call.
type countingSource struct {
	n   atomic.Int32
	typ string
}

func (c *countingSource) Token() (*oauth2.Token, error) {
	n := c.n.Add(1)
	return &oauth2.Token{AccessToken: "oauth-" + string(rune('0'+n)), TokenType: c.typ, Expiry: time.Now().Add(time.Hour)}, nil
}

type errSource struct{ err error }

func (e errSource) Token() (*oauth2.Token, error) { return nil, e.err }

func TestFromOAuth2(t *testing.T) {
	ctx := testCtx(t)
	ts := FromOAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "oauth-static"}), "acct-9", true)
	tok, err := ts.Token(ctx)
	if err != nil || tok.AccessToken != "oauth-static" || tok.AccountID != "acct-9" || !tok.FedRAMP {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	r := ts.(Refresher)
	if _, err := r.Refresh(ctx, tok); !errors.Is(err, ErrTokenUnchanged) {
		t.Errorf("static oauth2 Refresh: %v", err)
	}

	cs := &countingSource{typ: "bearer"}
	ts = FromOAuth2(cs, "", false)
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ts.(Refresher).Refresh(ctx, first)
	if err != nil || second.AccessToken == first.AccessToken {
		t.Fatalf("Refresh = %v, %v", second, err)
	}

	if _, err := FromOAuth2(&countingSource{typ: "MAC"}, "", false).Token(ctx); err == nil {
		t.Error("non-Bearer token type accepted")
	}
	if _, err := FromOAuth2(oauth2.StaticTokenSource(&oauth2.Token{}), "", false).Token(ctx); err == nil {
		t.Error("empty token accepted")
	}
	if _, err := FromOAuth2(nil, "", false).Token(ctx); err == nil {
		t.Error("nil source accepted")
	}

	orig := &oauth2.RetrieveError{Response: &http.Response{Status: "400 Bad Request"}, Body: []byte(strings.Repeat("b", 4000))}
	_, err = FromOAuth2(errSource{orig}, "", false).Token(ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re != orig {
		t.Fatalf("error does not unwrap to the oauth2 error: %v", err)
	}
	if msg := err.Error(); len(msg) > len("credentials: oauth2 token source: ")+maxQuotedError+3 || !strings.HasSuffix(msg, "...") {
		t.Errorf("error text not truncated (%d bytes)", len(msg))
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 3); got != "hél..." {
		t.Errorf("got %q", got)
	}
	if got := truncate("héllo", 5); got != "héllo" {
		t.Errorf("got %q", got)
	}
}
