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
