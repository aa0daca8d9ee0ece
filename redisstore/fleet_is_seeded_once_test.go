package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// The first replica's Initial seeds the fleet; a later replica with an
// older Initial adopts the fleet's set instead of overwriting it.
func TestCoordinatorSeedsOnce(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	stores := fleetOf(t, 3, addr, Options{})
	login := credentials.Login{AccountID: "acct-seed", UserID: "user-seed"}
	first, stale := testTokenSet("seed", 2, time.Hour), testTokenSet("seed", 1, time.Hour)
	got, err := coordinator(t, stores[0], login, CoordinatorOptions{Initial: first}).Load(ctx)
	if err != nil || !sameSet(got, first) {
		t.Fatalf("first replica: %v", err)
	}
	got, err = coordinator(t, stores[1], login, CoordinatorOptions{Initial: stale}).Load(ctx)
	if err != nil || !sameSet(got, first) {
		t.Fatalf("second replica did not adopt the fleet's set: %v", err)
	}
	other := credentials.Login{AccountID: "acct-seed-none"}
	if got, err := coordinator(t, stores[2], other, CoordinatorOptions{}).Load(ctx); err != nil || got != nil {
		t.Fatalf("unseeded login: %v, %v", got, err)
	}
	if _, err := stores[0].RefreshCoordinator(login, CoordinatorOptions{Initial: testTokenSet("another", 1, time.Hour)}); err == nil {
		t.Fatal("an Initial of another account was accepted")
	}
}
