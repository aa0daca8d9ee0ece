package identity

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
)

// wait sleeps d through the Sleep hook or a timer, stopping when ctx ends.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the wait after failed attempt n (1-based): the server's
// Retry-After when given, else equal-jitter exponential backoff; both capped
// at MaxRetryWait.
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, MaxRetryWait)
	}
	d := backoff.Policy{Initial: orDefault(c.AgentRetryBackoff, DefaultAgentRetryBackoff), Max: MaxRetryWait}.Delay(n)
	return backoff.Equal(d, c.jitter())
}

// jitter returns a uniform value in [0, 1), or 1 (no jitter, the longer
// wait) when the random source fails.
func (c *Client) jitter() float64 {
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 1
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}
