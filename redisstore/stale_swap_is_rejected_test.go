package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// A replica that read an older set cannot overwrite a newer rotation.
func TestCoordinatorCompareAndSwapRejectsStale(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	stores := fleetOf(t, 2, addr, Options{})
	login := credentials.Login{AccountID: "acct-cas"}
	s0, s1, s2 := testTokenSet("cas", 0, time.Hour), testTokenSet("cas", 1, time.Hour), testTokenSet("cas", 2, time.Hour)
	a := coordinator(t, stores[0], login, CoordinatorOptions{})
	b := coordinator(t, stores[1], login, CoordinatorOptions{})
	if err := a.CompareAndSwap(ctx, nil, s0); err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, nil, s1); !errors.Is(err, credentials.ErrTokenSetChanged) {
		t.Fatalf("create over an existing set: %v", err)
	}
	if err := a.CompareAndSwap(ctx, s0, s1); err != nil {
		t.Fatal(err)
	}
	if err := b.CompareAndSwap(ctx, s0, s2); !errors.Is(err, credentials.ErrTokenSetChanged) {
		t.Fatalf("stale swap: %v, want ErrTokenSetChanged", err)
	}
	got, err := b.Load(ctx)
	if err != nil || !sameSet(got, s1) {
		t.Fatalf("fleet set after a stale swap is not the newer rotation: %v", err)
	}
	// prev is compared on its access and refresh tokens only.
	prev := *s1
	prev.IDToken, prev.LastRefresh = "", time.Time{}
	if err := b.CompareAndSwap(ctx, &prev, s2); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Swaps != 1 || st.Conflicts != 2 {
		t.Fatalf("stats %+v", st)
	}
}
