package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// fakeClock is a settable clock shared by the token endpoint and sources.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type refreshEnv struct {
	t     *testing.T
	clock *fakeClock
	srv   *identitytest.Server
	home  string
	login *identitytest.Login
}

func newRefreshEnv(t *testing.T, opts identitytest.Options) *refreshEnv {
	t.Helper()
	clock := newFakeClock()
	opts.Now = clock.Now
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, clock.Now()); err != nil {
		t.Fatal(err)
	}
	return &refreshEnv{t: t, clock: clock, srv: srv, home: home, login: login}
}

func (e *refreshEnv) source() *RefreshingTokenSource {
	e.t.Helper()
	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: NewAuthFileCoordinator(e.home),
		TokenURL:    e.srv.TokenURL(),
		Getenv:      fakeEnv(nil),
		Now:         e.clock.Now,
		jitter:      func(d time.Duration) time.Duration { return d },
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Close)
	return s
}

// settle waits for a refresh in flight.
func (s *RefreshingTokenSource) settle() {
	s.mu.Lock()
	f := s.flight
	s.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

func (e *refreshEnv) authJSON() []byte {
	data, err := os.ReadFile(filepath.Join(e.home, AuthFileName))
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

func TestRefreshDueRules(t *testing.T) {
	tests := []struct {
		name        string
		lifetime    time.Duration // of the access token; 0 means 1 h
		advance     time.Duration // from issue
		lastRefresh time.Duration // age of last_refresh at that point
		opaque      bool          // access token without a readable exp
		noIat       bool          // access token with exp but without iat
		wantRefresh int
	}{
		{name: "expiring in 4 min", advance: 56 * time.Minute, wantRefresh: 1},
		{name: "expiring in 6 min", advance: 54 * time.Minute},
		{name: "last_refresh 9 days, exp in 1 h", lastRefresh: 9 * 24 * time.Hour},
		{name: "no readable exp, last_refresh 9 days", lastRefresh: 9 * 24 * time.Hour, opaque: true, wantRefresh: 1},
		{name: "no readable exp, last_refresh 7 days", lastRefresh: 7 * 24 * time.Hour, opaque: true},
		// Short-lived tokens: the window is a quarter of the lifetime
		// when that is under 5 minutes.
		{name: "20 min token expiring in 4 min", lifetime: 20 * time.Minute, advance: 16 * time.Minute, wantRefresh: 1},
		{name: "20 min token expiring in 6 min", lifetime: 20 * time.Minute, advance: 14 * time.Minute},
		{name: "8 min token expiring in 90 s", lifetime: 8 * time.Minute, advance: 390 * time.Second, wantRefresh: 1},
		{name: "8 min token expiring in 150 s", lifetime: 8 * time.Minute, advance: 330 * time.Second},
		{name: "2 s token just issued", lifetime: 2 * time.Second},
		{name: "2 s token expiring in 600 ms", lifetime: 2 * time.Second, advance: 1400 * time.Millisecond},
		{name: "2 s token expiring in 400 ms", lifetime: 2 * time.Second, advance: 1600 * time.Millisecond, wantRefresh: 1},
		// Without iat the lifetime is unknown: Codex's 5 minutes.
		{name: "2 s token without iat", lifetime: 2 * time.Second, noIat: true, wantRefresh: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRefreshEnv(t, identitytest.Options{TokenLifetime: tt.lifetime})
			e.clock.Advance(tt.advance)
			l := *e.login
			if tt.opaque {
				l.AccessToken = "opaque-access-token"
			}
			if tt.noIat {
				l.AccessToken = withoutIat(t, l.AccessToken)
			}
			if err := l.WriteAuthJSON(e.home, e.clock.Now().Add(-tt.lastRefresh)); err != nil {
				t.Fatal(err)
			}
			s := e.source()
			tok, err := s.Token(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			s.settle()
			if got := e.srv.Stats().TokenRefreshes; got != tt.wantRefresh || s.TokenRequests() != int64(tt.wantRefresh) {
				t.Fatalf("refreshes = %d (requests %d), want %d", got, s.TokenRequests(), tt.wantRefresh)
			}
			if tt.wantRefresh == 0 {
				if tok.AccessToken != identity.Secret(l.AccessToken) {
					t.Error("token changed without a refresh")
				}
				return
			}
			if !tt.opaque && tok.AccessToken != identity.Secret(l.AccessToken) {
				t.Error("a due but valid token must be served while the refresh runs")
			}
			next, err := s.Token(testCtx(t))
			if err != nil || next.AccessToken == identity.Secret(l.AccessToken) || next.AccountID != "acct-r" || next.UserID != "user-r" {
				t.Fatalf("after refresh: %v, %v", next, err)
			}
			data := e.authJSON()
			if !bytes.Contains(data, []byte(next.AccessToken)) || bytes.Contains(data, []byte(l.RefreshToken)) {
				t.Error("auth.json does not hold the rotated tokens")
			}
			af, _ := ParseAuthFile(data)
			if af.LastRefresh == nil || !af.LastRefresh.Equal(e.clock.Now().Truncate(time.Second)) { // stored in whole seconds
				t.Errorf("last_refresh = %v, want %v", af.LastRefresh, e.clock.Now())
			}
			if fi, _ := os.Stat(filepath.Join(e.home, AuthFileName)); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode().Perm())
			}
		})
	}
}

// withoutIat re-encodes a JWT's payload without its iat claim (unsigned:
// the refreshing source reads but does not verify access tokens).
func withoutIat(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["iat"]; !ok {
		t.Fatal("the token has no iat to remove")
	}
	delete(claims, "iat")
	payload, _ = json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

// The window is Codex's 5 minutes for real tokens and a quarter of the
// lifetime for short-lived ones, so that a 2 s token is not always due.
func TestRefreshWindowScalesWithLifetime(t *testing.T) {
	iat := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		iat, exp time.Time
		want     time.Duration
	}{
		{"10 days (a real ChatGPT token)", iat, iat.Add(240 * time.Hour), RefreshWindow},
		{"1 h", iat, iat.Add(time.Hour), RefreshWindow},
		{"20 min: a quarter is exactly 5 min", iat, iat.Add(20 * time.Minute), 5 * time.Minute},
		{"8 min", iat, iat.Add(8 * time.Minute), 2 * time.Minute},
		{"2 s", iat, iat.Add(2 * time.Second), 500 * time.Millisecond},
		{"no iat", time.Time{}, iat.Add(2 * time.Second), RefreshWindow},
		{"no exp", iat, time.Time{}, RefreshWindow},
		{"iat equal to exp", iat, iat, RefreshWindow},
		{"iat after exp", iat.Add(time.Minute), iat, RefreshWindow},
	}
	for _, tt := range tests {
		if got := RefreshWindowFor(tt.iat, tt.exp); got != tt.want {
			t.Errorf("%s: RefreshWindowFor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRefreshPermanentFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *refreshEnv)
		reason string
	}{
		{"reused", func(e *refreshEnv) { useRefreshToken(e.t, e.srv, e.login.RefreshToken) }, ReasonRefreshTokenReused},
		{"invalidated", func(e *refreshEnv) { e.srv.RevokeRefreshToken(e.login.RefreshToken) }, ReasonRefreshTokenInvalidated},
		{"expired", func(e *refreshEnv) {}, ReasonRefreshTokenExpired}, // RefreshTokenLifetime below
		{"401 without code", func(e *refreshEnv) {
			e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 401, Body: []byte(`{}`)})
		}, ReasonUnauthorized},
		{"string error, upper case", func(e *refreshEnv) {
			e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 400, Body: []byte(`{"error":"REFRESH_TOKEN_EXPIRED"}`)})
		}, ReasonRefreshTokenExpired},
		{"top-level code", func(e *refreshEnv) {
			e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 403, Body: []byte(`{"code":"refresh_token_reused"}`)})
		}, ReasonRefreshTokenReused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRefreshEnv(t, identitytest.Options{RefreshTokenLifetime: 30 * time.Minute})
			tt.setup(e)
			e.clock.Advance(61 * time.Minute) // expired access token
			s := e.source()
			_, err := s.Token(testCtx(t))
			var re *RefreshError
			if !errors.As(err, &re) || !re.Permanent || re.Reason != tt.reason || !errors.Is(err, ErrLoginExpired) || re.Temporary() {
				t.Fatalf("err = %v, want permanent %s", err, tt.reason)
			}
			if msg := err.Error(); !bytes.Contains([]byte(msg), []byte("log in again")) {
				t.Errorf("message does not tell the user to log in again: %s", msg)
			}
			for range 2 {
				if _, err := s.Token(testCtx(t)); !errors.Is(err, ErrLoginExpired) {
					t.Fatalf("later attempt: %v", err)
				}
				if _, err := s.Refresh(testCtx(t), &Token{AccessToken: identity.Secret(e.login.AccessToken)}); !errors.Is(err, ErrLoginExpired) {
					t.Fatalf("later Refresh: %v", err)
				}
			}
			if n := s.TokenRequests(); n != 1 {
				t.Fatalf("token requests = %d, want 1 (the failure is remembered)", n)
			}
			// A new login in auth.json ends it.
			e.srv.ClearFaults(identitytest.RouteToken)
			l2, _ := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
			l2.WriteAuthJSON(e.home, e.clock.Now())
			// The store was just read: it is read again only a
			// permRecheckEvery later, and the failure is served meanwhile.
			if _, err := s.Token(testCtx(t)); !errors.Is(err, ErrLoginExpired) {
				t.Fatalf("within permRecheckEvery of the last store read: %v, want the remembered failure", err)
			}
			e.clock.Advance(permRecheckEvery)
			tok, err := s.Token(testCtx(t))
			if err != nil || tok.AccessToken != identity.Secret(l2.AccessToken) {
				t.Fatalf("after a new login: %v, %v", tok, err)
			}
		})
	}
}

func useRefreshToken(t *testing.T, srv *identitytest.Server, rt string) {
	t.Helper()
	body := `{"client_id":"` + DefaultClientID + `","grant_type":"refresh_token","refresh_token":"` + rt + `"}`
	resp, err := http.Post(srv.TokenURL(), "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("exchange: %d", resp.StatusCode)
	}
}

func TestRefreshServerErrorIsTemporary(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 500})
	e.clock.Advance(61 * time.Minute)
	s := e.source()
	_, err := s.Token(testCtx(t))
	var re *RefreshError
	if !errors.As(err, &re) || re.Permanent || !re.Temporary() || re.Status != 500 || errors.Is(err, ErrLoginExpired) {
		t.Fatalf("err = %v, want temporary", err)
	}
	// During the backoff no request; after it the refresh is retried.
	if _, err := s.Token(testCtx(t)); err == nil || s.TokenRequests() != 1 {
		t.Fatalf("during backoff: %v, %d requests", err, s.TokenRequests())
	}
	e.srv.ClearFaults(identitytest.RouteToken)
	e.clock.Advance(2 * time.Second)
	tok, err := s.Token(testCtx(t))
	if err != nil || tok.AccessToken == identity.Secret(e.login.AccessToken) || s.TokenRequests() != 2 {
		t.Fatalf("after backoff: %v, %v, %d requests", tok, err, s.TokenRequests())
	}
}

// An expired token is never returned, and a caller whose context ends
// stops waiting while the refresh goes on.
func TestExpiredTokenWaitsBoundedByContext(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Latency: 300 * time.Millisecond, Times: 1})
	e.clock.Advance(61 * time.Minute)
	s := e.source()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if tok, err := s.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Token = %v, %v; want the caller's deadline", tok, err)
	}
	tok, err := s.Token(testCtx(t)) // joins the same flight
	if err != nil || tok.AccessToken == identity.Secret(e.login.AccessToken) || s.TokenRequests() != 1 {
		t.Fatalf("%v, %v, %d requests", tok, err, s.TokenRequests())
	}
}

// 401 recovery: the first Refresh reloads auth.json (no request), the
// second refreshes over the network; another account is permanent.
func TestRefreshAfter401ReloadsFirst(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	s := e.source()
	a, err := s.Token(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// Codex refreshed meanwhile.
	l2, _ := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
	l2.WriteAuthJSON(e.home, e.clock.Now())
	b, err := s.Refresh(testCtx(t), a)
	if err != nil || b.AccessToken != identity.Secret(l2.AccessToken) || s.TokenRequests() != 0 {
		t.Fatalf("first Refresh = %v, %v, %d requests; want the reloaded token and no request", b, err, s.TokenRequests())
	}
	c, err := s.Refresh(testCtx(t), b)
	if err != nil || c.AccessToken == b.AccessToken || s.TokenRequests() != 1 {
		t.Fatalf("second Refresh = %v, %v, %d requests; want a network refresh", c, err, s.TokenRequests())
	}
	// Another account in auth.json.
	other, _ := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-other", UserID: "user-o"})
	other.WriteAuthJSON(e.home, e.clock.Now())
	_, err = s.Refresh(testCtx(t), c)
	var re *RefreshError
	if !errors.As(err, &re) || re.Reason != ReasonAccountChanged || !re.Permanent {
		t.Fatalf("account switch: %v", err)
	}
}

// Refreshing keeps every other member of auth.json, and a new id token
// re-derives the account.
func TestRefreshKeepsUnknownMembers(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	path := filepath.Join(e.home, AuthFileName)
	err := NewFileStore(path).Update(testCtx(t), func(a *AuthFile) error {
		a.Tokens.AccountID = ""
		return a.SetExtra("future", []byte(`{"x":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(61 * time.Minute)
	s := e.source()
	if _, err := s.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	af, err := NewFileStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	raw, ok := af.Extra("future")
	if ok {
		_ = json.Compact(&compact, raw)
	}
	if !ok || compact.String() != `{"x":1}` {
		t.Errorf("unknown member lost: %s", raw)
	}
	if af.Tokens.AccountID != "acct-r" {
		t.Errorf("account_id = %q, want it re-derived from the new id token", af.Tokens.AccountID)
	}
}

// A token endpoint that echoes the request never gets a token into an
// error, and the source prints no token.
func TestRefreshErrorsHoldNoSecret(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	echoed := []byte(`{"error":{"code":"` + e.login.RefreshToken + `","message":"` + e.login.AccessToken + `"}}`)
	e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 500, Body: echoed})
	e.clock.Advance(61 * time.Minute)
	s := e.source()
	_, err := s.Token(testCtx(t))
	if err == nil {
		t.Fatal("no error")
	}
	for _, out := range []string{err.Error(), fmt.Sprintf("%v %+v %s", err, s, s)} {
		for _, secret := range []string{e.login.RefreshToken, e.login.AccessToken, e.login.IDToken} {
			if strings.Contains(out, secret) || strings.Contains(out, strings.ToLower(secret)) {
				t.Fatalf("secret in %q", out)
			}
		}
	}
}

// Two sources on one auth.json in one process (two transports), 20
// goroutines each, an expired token: one token request in all.
func TestOneRefreshAcrossSourcesInProcess(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Latency: 50 * time.Millisecond, Times: 1})
	e.clock.Advance(61 * time.Minute)
	a, b := e.source(), e.source()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := s.Token(testCtx(t))
			if err == nil && tok.AccessToken == identity.Secret(e.login.AccessToken) {
				err = errors.New("an expired token was returned")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := e.srv.Stats(); st.TokenRefreshes != 1 || st.Rejections != 0 || a.TokenRequests()+b.TokenRequests() != 1 {
		t.Fatalf("refreshes %d, rejections %v, requests %d+%d", st.TokenRefreshes, st.RejectionsByReason, a.TokenRequests(), b.TokenRequests())
	}
}
