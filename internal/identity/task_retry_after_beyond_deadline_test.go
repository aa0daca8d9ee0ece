package identity

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// A 429 whose Retry-After is longer than the time left before the
// registration's deadline is returned at once: no capped wait, no second
// attempt the server already said it would refuse. The error is the
// temporary 429 and carries the server's Retry-After, uncapped, so the
// caller can back the key off until then.
func TestRegisterTaskRetryAfterBeyondDeadlineFailsAtOnce(t *testing.T) {
	s := &scripted{steps: []http.HandlerFunc{respond(429, "slow down", "Retry-After", "120")}}
	c, sleeps := agentClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.RegisterTask(ctx, vecKey(t), vecRuntime, "thread-1")
	var re *RegistrationError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests || !re.Temporary() {
		t.Fatalf("err %v, want the temporary 429", err)
	}
	if re.RetryAfter != 120*time.Second || re.Attempts != 1 {
		t.Errorf("RetryAfter %v after %d attempts, want 2m0s after 1", re.RetryAfter, re.Attempts)
	}
	if n, w := s.hits.Load(), sleeps.Waits(); n != 1 || len(w) != 0 {
		t.Fatalf("%d attempts, waits %v; want 1 attempt and no wait", n, w)
	}

	// A Retry-After that fits in the time left is still waited for (capped).
	s = &scripted{steps: []http.HandlerFunc{respond(429, "slow down", "Retry-After", "20"), respond(200, `{"task_id":"t"}`)}}
	c, sleeps = agentClient(t, s)
	if id, err := c.RegisterTask(ctx, vecKey(t), vecRuntime, "thread-1"); err != nil || id != "t" {
		t.Fatalf("Retry-After 20 s with 30 s left: %q, %v", id, err)
	}
	if w := sleeps.Waits(); len(w) != 1 || w[0] != MaxRetryWait {
		t.Fatalf("waits %v, want [%v]", w, MaxRetryWait)
	}
}
