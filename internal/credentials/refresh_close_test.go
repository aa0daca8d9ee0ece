package credentials

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// Closing a source while its token request is out does not lose the
// rotation: the endpoint has already spent the old refresh token, so the
// answer is still read and stored, and the login stays refreshable.
func TestCloseDuringRefreshKeepsTheRotation(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	answered := make(chan struct{})
	release := make(chan struct{})
	// The proxy forwards to the real endpoint (which rotates at once) and
	// holds the answer until the test has closed the source.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post(e.srv.TokenURL(), "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		close(answered)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	defer proxy.Close()

	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: NewAuthFileCoordinator(e.home),
		TokenURL:    proxy.URL,
		Getenv:      fakeEnv(nil),
		Now:         e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(testCtx(t)); err != nil { // loads the login
		t.Fatal(err)
	}
	e.clock.Advance(58 * time.Minute)              // due (within 5 min of exp) but valid
	if _, err := s.Token(testCtx(t)); err != nil { // starts the background refresh
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh never reached the token endpoint")
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	for deadline := time.Now().Add(5 * time.Second); s.ctx.Err() == nil; {
		if time.Now().After(deadline) {
			t.Fatal("Close did not stop the source")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}

	af, err := NewFileStore(e.home + "/" + AuthFileName).Load()
	if err != nil {
		t.Fatal(err)
	}
	if af.Tokens == nil || af.Tokens.RefreshToken == e.login.RefreshToken {
		t.Fatal("auth.json still holds the spent refresh token: the rotation was lost")
	}
	// The stored login is the live one: the next source refreshes with it.
	e.clock.Advance(57 * time.Minute) // the rotated token is due in turn
	next := e.source()
	if _, err := next.Token(testCtx(t)); err != nil {
		t.Fatalf("the next source failed: %v", err)
	}
	next.settle() // the due token is refreshed in the background
	if tok, err := next.Token(testCtx(t)); err != nil || next.TokenRequests() != 1 {
		t.Fatalf("the next refresh failed (%v, %d requests): the stored refresh token is not the live one", err, next.TokenRequests())
	} else if tok.AccessToken == "" {
		t.Fatal("empty token")
	}
	if got := e.srv.Stats().TokenRefreshes; got != 2 {
		t.Errorf("%d token refreshes at the endpoint, want 2", got)
	}
}

// failingSwap is a coordinator whose next CompareAndSwap fails, as a full
// disk or a store outage would.
type failingSwap struct {
	*AuthFileCoordinator
	fail bool
}

func (c *failingSwap) CompareAndSwap(ctx context.Context, prev, next *TokenSet) error {
	if c.fail {
		c.fail = false
		return errors.New("disk full")
	}
	return c.AuthFileCoordinator.CompareAndSwap(ctx, prev, next)
}

// A rotation the store could not take is stored before the next refresh,
// instead of that refresh sending the spent refresh token again.
func TestUnstoredRotationIsStoredBeforeTheNextRefresh(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	coord := &failingSwap{AuthFileCoordinator: NewAuthFileCoordinator(e.home), fail: true}
	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: coord, TokenURL: e.srv.TokenURL(), Getenv: fakeEnv(nil), Now: e.clock.Now,
		jitter: func(d time.Duration) time.Duration { return d },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e.clock.Advance(61 * time.Minute) // expired: Token waits for the refresh
	first, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(61 * time.Minute)
	second, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatalf("second refresh: %v (the spent refresh token was sent again?)", err)
	}
	if first.AccessToken == second.AccessToken || s.TokenRequests() != 2 {
		t.Fatalf("%d token requests; tokens equal: %v", s.TokenRequests(), first.AccessToken == second.AccessToken)
	}
	if n := e.srv.Stats().Rejections; n != 0 {
		t.Errorf("%d rejections at the endpoint", n)
	}
}
