package credentials

import (
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// A token that the endpoint just issued is not due for a quarter of its
// lifetime (at most a minute) whatever the clocks then say: also when no
// skew could be learned (an answer without iat or Date).
func TestRefreshHoldsJustIssuedToken(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{TokenLifetime: 8 * time.Minute})
	s := e.source()
	e.clock.Advance(9 * time.Minute)
	if _, err := s.Token(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	s.settle()
	s.mu.Lock()
	issued := s.fresh.issued
	s.mu.Unlock()
	snap := s.cache.Load()
	if !snap.heldUntil.After(issued) {
		t.Fatal("a just-issued token is not held")
	}
	if snap.due(instant{local: issued.Add(30 * time.Second), server: issued.Add(time.Hour)}) {
		t.Fatal("a token issued 30 s ago is due because the clocks say so")
	}
	if !snap.due(instant{local: issued.Add(3 * time.Minute), server: issued.Add(time.Hour)}) {
		t.Fatal("after the hold the clocks decide again")
	}
}

// A slow answer is latency, not skew: the endpoint stamped its token
// between the local send and receipt times, so only a stamp outside that
// range (by more than 30 s) moves the estimate, and then by its lower
// bound.
func TestRefreshSkewEstimateIgnoresLatency(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name           string
		sent, received time.Time
		want           time.Duration
	}{
		{"in sync", t0, t0.Add(200 * time.Millisecond), 0},
		{"a minute of latency", t0, t0.Add(time.Minute), 0},
		{"2 h fast", t0.Add(2 * time.Hour), t0.Add(2*time.Hour + 200*time.Millisecond), 2*time.Hour - time.Second},
		{"2 h slow", t0.Add(-2 * time.Hour), t0.Add(-2*time.Hour + 200*time.Millisecond), -2*time.Hour - time.Second},
		{"20 s fast", t0.Add(20 * time.Second), t0.Add(20 * time.Second), 0},
	}
	for _, tt := range tests {
		s := &RefreshingTokenSource{}
		s.skew.Store(12345)
		s.learnSkew(&tokenResponse{date: t0, sent: tt.sent, received: tt.received})
		if got := time.Duration(s.skew.Load()); got != tt.want {
			t.Errorf("%s: skew %v, want %v", tt.name, got, tt.want)
		}
	}
}
