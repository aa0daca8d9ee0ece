package credentials

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// RefreshWithOrigin says whether the token came from the store or the
// endpoint, and a token the endpoint has just issued is not refreshed
// again when it is rejected at once: only after freshRejectionHold.
func TestRefreshReportsOriginAndHoldsAFreshRejectedToken(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{TokenLifetime: 24 * time.Hour})
	s := e.source()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The Codex CLI refreshed meanwhile: a reload, no token request.
	cli, err := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.WriteAuthJSON(e.home, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok, origin, err := s.RefreshWithOrigin(ctx, old)
	if err != nil || origin != RefreshFromStore || tok.AccessToken.Reveal() != cli.AccessToken || s.TokenRequests() != 0 {
		t.Fatalf("after the CLI refreshed: origin %v, err %v, %d token requests; want the stored token, no request", origin, err, s.TokenRequests())
	}

	// The stored token is rejected: a network refresh.
	fresh, origin, err := s.RefreshWithOrigin(ctx, tok)
	if err != nil || origin != RefreshFromEndpoint || fresh.AccessToken == tok.AccessToken || s.TokenRequests() != 1 {
		t.Fatalf("stored token rejected: origin %v, err %v, %d token requests; want a new token from the endpoint", origin, err, s.TokenRequests())
	}

	// The token fresh from the endpoint is rejected at once: held.
	if _, _, err := s.RefreshWithOrigin(ctx, fresh); !errors.Is(err, ErrTokenUnchanged) || s.TokenRequests() != 1 {
		t.Fatalf("fresh token rejected at once: %v, %d token requests; want ErrTokenUnchanged and no request", err, s.TokenRequests())
	}
	if _, err := s.Refresh(ctx, fresh); !errors.Is(err, ErrTokenUnchanged) || s.TokenRequests() != 1 {
		t.Fatalf("Refresh of the held token: %v, %d token requests", err, s.TokenRequests())
	}

	// After the hold it is refreshed again, once.
	e.clock.Advance(freshRejectionHold + time.Second)
	next, origin, err := s.RefreshWithOrigin(ctx, fresh)
	if err != nil || origin != RefreshFromEndpoint || next.AccessToken == fresh.AccessToken || s.TokenRequests() != 2 {
		t.Fatalf("after the hold: origin %v, err %v, %d token requests; want one more refresh", origin, err, s.TokenRequests())
	}
}
