package credentials

import (
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// A local clock two hours fast makes every token look expired. The first
// request refreshes; the token the endpoint just issued is then judged by
// the endpoint's clock (its iat against the local time it came), so the
// next requests use it and 20 requests cost one exchange.
func TestRefreshClockTwoHoursFastRefreshesOnce(t *testing.T) {
	for _, lifetime := range []time.Duration{time.Hour, 10 * time.Minute} {
		t.Run(lifetime.String(), func(t *testing.T) {
			srv, err := identitytest.NewServer(identitytest.Options{TokenLifetime: lifetime})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-skew", UserID: "user-skew"})
			if err != nil {
				t.Fatal(err)
			}
			home := t.TempDir()
			if err := login.WriteAuthJSON(home, time.Now()); err != nil {
				t.Fatal(err)
			}
			twentyRequestsCostOneExchange(t, "first source", home, srv.TokenURL())
			// A second source on the same clock, starting from the file
			// the first one wrote, learns nothing before its first
			// exchange: it refreshes once, then holds.
			twentyRequestsCostOneExchange(t, "second source", home, srv.TokenURL())
		})
	}
}

// Without iat in the new access token the skew comes from the answer's
// Date header.
func TestRefreshClockTwoHoursFastUsesDateWithoutIat(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	claims := identitytest.Login{AccountID: "acct-skew", UserID: "user-skew"}
	login, err := srv.IssueLogin(claims)
	if err != nil {
		t.Fatal(err)
	}
	next, err := srv.IssueLogin(claims)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 200, Body: []byte(
		`{"id_token":"` + next.IDToken + `","access_token":"` + withoutIat(t, next.AccessToken) + `","refresh_token":"` + next.RefreshToken + `"}`)})
	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: NewAuthFileCoordinator(home),
		TokenURL:    srv.TokenURL(),
		Getenv:      fakeEnv(nil),
		Now:         func() time.Time { return time.Now().Add(2 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		if _, err := s.Token(testCtx(t)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		s.settle()
	}
	if n := s.TokenRequests(); n > 1 {
		t.Fatalf("20 requests cost %d token exchanges, want at most 1", n)
	}
}

// twentyRequestsCostOneExchange sends 20 requests through a new source over
// home whose clock runs 2 h fast and fails unless they cost at most one
// token exchange.
func twentyRequestsCostOneExchange(t *testing.T, name, home, tokenURL string) {
	t.Helper()
	s, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: NewAuthFileCoordinator(home),
		TokenURL:    tokenURL,
		Getenv:      fakeEnv(nil),
		Now:         func() time.Time { return time.Now().Add(2 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		if _, err := s.Token(testCtx(t)); err != nil {
			t.Fatalf("%s, request %d: %v", name, i, err)
		}
		s.settle()
	}
	if n := s.TokenRequests(); n > 1 {
		t.Fatalf("%s: 20 requests with the clock 2 h fast cost %d token exchanges, want at most 1", name, n)
	}
}
