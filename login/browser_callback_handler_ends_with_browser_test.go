package login

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// stallingTransport blocks every request until the request's context ends
// and then answers body anyway (an answer that raced the cancellation).
type stallingTransport struct {
	body     []byte
	once     sync.Once
	entered  chan struct{} // closed when the first request arrives
	inflight atomic.Int32
}

func (s *stallingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	s.once.Do(func() { close(s.entered) })
	<-req.Context().Done() // bounded: every context here ends within testWait
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(s.body)),
		Request:    req,
	}, nil
}

// A /cancel that arrives while the code exchange is in progress ends the
// login: when Browser returns, the callback handler's exchange has
// returned too (its context ended with Browser), and auth.json is never
// written, not even by an exchange answer that arrives late.
func TestBrowserCallbackHandlerEndsWithBrowser(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	l, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-late", UserID: "user-late"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"id_token": l.IDToken, "access_token": l.AccessToken, "refresh_token": l.RefreshToken})
	tr := &stallingTransport{body: body, entered: make(chan struct{})}
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	callbackDone := make(chan struct{})
	open := func(authURL string) error {
		u, err := url.Parse(authURL)
		if err != nil {
			return err
		}
		state := u.Query().Get("state")
		go func() {
			defer close(callbackDone)
			c := &http.Client{}
			defer c.CloseIdleConnections()
			if resp, err := c.Get(base + "/auth/callback?code=ac_stalled&state=" + url.QueryEscape(state)); err == nil {
				resp.Body.Close()
			}
		}()
		select {
		case <-tr.entered:
		case <-time.After(testWait):
			return errors.New("the code exchange never started")
		}
		c := &http.Client{}
		defer c.CloseIdleConnections()
		resp, err := c.Get(base + "/cancel")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	home := t.TempDir()
	ctx, cancel := contextWithCancel(t)
	err = Browser(ctx, Options{CodexHome: home, Issuer: "http://127.0.0.1:1", Port: port, Out: newOut(),
		OpenBrowser: open, Getenv: env(), HTTPClient: &http.Client{Transport: tr}})
	inflight := tr.inflight.Load()
	_, statErr := readFileIfAny(home)
	// Unblock a handler left behind (before the fix) so the test ends cleanly.
	cancel()
	<-callbackDone
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if inflight != 0 {
		t.Errorf("%d token requests still in flight after Browser returned", inflight)
	}
	if statErr == nil {
		t.Error("auth.json was written by a login that was cancelled")
	}
	if _, err := readFileIfAny(home); err == nil {
		t.Error("auth.json was written after Browser returned")
	}
}
