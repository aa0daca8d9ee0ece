package taskcache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/temporary"
)

// A task registration answered 429 with Retry-After: 120, longer than the
// registration's budget (the cache's 30 s timeout), used to hold every
// caller of the key for the client's capped retries (5 s, twice) and then
// back the key off for at most BackoffMax. Now the caller gets the
// temporary 429, carrying RetryAfter, after one request and no wait, and
// the key is not registered again before those 120 s have passed on the
// cache's clock, though BackoffMax is shorter.
func TestRetryAfterBeyondBudgetFailsAtOnceAndBacksOffUntilThen(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "120")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	key, err := identity.NewPrivateKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	var waits atomic.Int32
	client := &identity.Client{
		HTTPClient:  srv.Client(),
		AuthAPIBase: srv.URL,
		Now:         clk.Now,
		// Counts the retry waits instead of sleeping them: any wait at
		// all is the bug.
		Sleep: func(ctx context.Context, d time.Duration) error { waits.Add(1); return ctx.Err() },
	}
	opts := testOptions(clk)
	opts.Timeout = 30 * time.Second
	opts.BackoffMax = time.Minute
	c := mustCache(t, func(ctx context.Context, k string) (string, error) {
		return client.RegisterTask(ctx, key, "agent-123", k)
	}, opts)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := clk.Now()
	_, err = c.Get(ctx, "thread-1")
	var re *identity.RegistrationError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests || !temporary.Is(err) {
		t.Fatalf("Get: %v, want the temporary 429", err)
	}
	if re.RetryAfter != 120*time.Second {
		t.Errorf("RetryAfter %v, want 2m0s", re.RetryAfter)
	}
	if n, w := hits.Load(), waits.Load(); n != 1 || w != 0 {
		t.Fatalf("%d registration requests and %d retry waits, want 1 and 0", n, w)
	}

	// The key backs off until the server's time, not BackoffMax's.
	for _, d := range []time.Duration{0, time.Minute, 120*time.Second - time.Nanosecond} {
		clk.Advance(start.Add(d).Sub(clk.Now())) // to d after the 429
		_, err := c.Get(ctx, "thread-1")
		var berr *BackoffError
		if !errors.As(err, &berr) || !errors.As(err, &re) || re.RetryAfter != 120*time.Second || !temporary.Is(err) {
			t.Fatalf("%v after the 429: %v, want a temporary backoff carrying the RetryAfter", d, err)
		}
		if n := hits.Load(); n != 1 {
			t.Fatalf("%v after the 429: %d registration requests, want 1", d, n)
		}
	}
	clk.Advance(time.Nanosecond)
	if _, err := c.Get(ctx, "thread-1"); err == nil || hits.Load() != 2 {
		t.Fatalf("at the server's time: %v after %d requests, want a new (failing) attempt", err, hits.Load())
	}
}
