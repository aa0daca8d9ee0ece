package login

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// gatedExchange passes requests on to base, but holds the first
// authorization-code exchange until release is closed.
type gatedExchange struct {
	base      http.RoundTripper
	exchanges atomic.Int32
	entered   chan struct{}
	release   chan struct{}
}

func (g *gatedExchange) RoundTrip(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		var err error
		if b, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	if strings.HasSuffix(req.URL.Path, "/oauth/token") && bytes.Contains(b, []byte("grant_type=authorization_code")) {
		if g.exchanges.Add(1) == 1 {
			close(g.entered)
			select {
			case <-g.release:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
	}
	return g.base.RoundTrip(r2)
}

// A second callback with the same state, arriving while the first one's
// exchange runs, gets an error page and runs no second exchange; the
// first callback completes the login.
func TestBrowserCallbackStateIsSingleUse(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetAuthorizeLogin(&identitytest.Login{AccountID: "acct-once", UserID: "user-once"})
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	g := &gatedExchange{base: base, entered: make(chan struct{}), release: make(chan struct{})}
	var firstPage, replayPage string
	var replayStatus int
	firstDone := make(chan struct{})
	open := func(authURL string) error {
		defer close(g.release)
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		defer c.CloseIdleConnections()
		resp, err := c.Get(authURL)
		if err != nil {
			close(firstDone)
			return err
		}
		resp.Body.Close()
		callback := resp.Header.Get("Location")
		if !strings.Contains(callback, "/auth/callback?") {
			close(firstDone)
			return errors.New("authorize did not redirect to the callback")
		}
		go func() {
			defer close(firstDone)
			c := &http.Client{}
			defer c.CloseIdleConnections()
			resp, err := c.Get(callback)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			firstPage = string(b)
		}()
		select {
		case <-g.entered:
		case <-time.After(testWait):
			return errors.New("the code exchange never started")
		}
		resp, err = c.Get(callback) // the replay
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		replayStatus, replayPage = resp.StatusCode, string(b)
		return nil
	}
	home := t.TempDir()
	err := Browser(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Port: freePort(t), Out: newOut(),
		OpenBrowser: open, Getenv: env(), HTTPClient: &http.Client{Transport: g}})
	<-firstDone
	if err != nil {
		t.Fatal(err)
	}
	if n := g.exchanges.Load(); n != 1 {
		t.Errorf("code exchanges = %d, want 1", n)
	}
	if replayStatus != http.StatusBadRequest || !strings.Contains(replayPage, "already used") {
		t.Errorf("replayed callback answered %d %q, want 400 and an error page", replayStatus, replayPage)
	}
	if !strings.Contains(firstPage, "Signed in") {
		t.Errorf("first callback page %q", firstPage)
	}
	readCodexAuth(t, home, "acct-once")
}
