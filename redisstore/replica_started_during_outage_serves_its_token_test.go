package redisstore

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// A replica started while Redis is down serves the still-valid token of
// its auth.json (the Coordinator's seed) instead of failing every request;
// it does not refresh without the fleet, and once Redis is back it seeds
// the fleet as usual.
func TestReplicaStartedDuringOutageServesItsToken(t *testing.T) {
	r := startRedis(t, 0)
	r.kill() // down before the replica starts
	s := newSealedStore(t, r.addr, newSealer(t, newKey(t)), Options{OpTimeout: 300 * time.Millisecond})
	login := credentials.Login{AccountID: "acct-started-down", UserID: "user-started-down"}
	seed := testTokenSet("started-down", 0, time.Hour)
	c := coordinator(t, s, login, CoordinatorOptions{Initial: seed})
	defer c.Close()
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{Coordinator: c,
		TokenURL: "http://127.0.0.1:1/oauth/token", HTTPClient: &http.Client{}, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for i := range 3 {
		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("request %d with Redis down and a valid token: %v", i, err)
		}
		if tok.AccessToken.Reveal() != seed.AccessToken {
			t.Fatalf("request %d: not the seed's token", i)
		}
	}
	if n := src.TokenRequests(); n != 0 {
		t.Fatalf("%d token requests without the fleet", n)
	}

	// The holder of the fleet lock never gets the remembered set: it is
	// about to refresh from what Load returns.
	r.restart()
	release, err := c.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.kill()
	if got, err := c.Load(ctx); err == nil {
		t.Fatalf("the lock holder's Load answered from memory (%v) while Redis is down", got != nil)
	}
	release()
}
