package taskcache

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// A registration that failed with the server's Retry-After puts the key
// into backoff until then (beyond BackoffMax, up to ten minutes), not for the policy's
// sub-second first wait: the server said when to come back, and asking
// sooner only earns another 429.
func TestBackoffHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		max        time.Duration
		want       time.Duration
	}{
		{"beyond BackoffMax", 120 * time.Second, time.Minute, 120 * time.Second},
		{"capped at ten minutes", time.Hour, time.Minute, 10 * time.Minute},
		{"capped by a BackoffMax above ten minutes", 2 * time.Hour, time.Hour, time.Hour},
		{"below the cap", 20 * time.Second, time.Minute, 20 * time.Second},
		{"shorter than the policy's wait", 100 * time.Millisecond, time.Minute, 750 * time.Millisecond},
		{"absent", 0, time.Minute, 750 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			opts := testOptions(clk) // first wait 1 s · (1 − 0.5·0.5) = 750 ms
			opts.BackoffMax = tc.max
			calls := 0
			c := mustCache(t, func(context.Context, string) (string, error) {
				calls++
				return "", &identity.RegistrationError{Op: identity.OpTaskRegistration,
					StatusCode: http.StatusTooManyRequests, RetryAfter: tc.retryAfter, Attempts: 3}
			}, opts)
			ctx := context.Background()
			if _, err := c.Get(ctx, "k"); err == nil {
				t.Fatal("Get succeeded on a 429")
			}
			_, err := c.Get(ctx, "k")
			var berr *BackoffError
			if !errors.As(err, &berr) {
				t.Fatalf("second Get: %v, want a BackoffError", err)
			}
			if got := berr.Until.Sub(clk.Now()); got != tc.want {
				t.Errorf("backoff %v, want %v", got, tc.want)
			}
			clk.Advance(tc.want - time.Nanosecond)
			if _, err := c.Get(ctx, "k"); !errors.As(err, &berr) || calls != 1 {
				t.Errorf("just before the deadline: %v after %d calls, want a BackoffError and 1 call", err, calls)
			}
			clk.Advance(time.Nanosecond)
			_, _ = c.Get(ctx, "k")
			if calls != 2 {
				t.Errorf("at the deadline: %d calls, want 2", calls)
			}
		})
	}
}
