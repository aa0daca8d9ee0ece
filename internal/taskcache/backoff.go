package taskcache

import (
	"errors"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
	"github.com/agentauth/agentauth/internal/identity"
)

// backoffState is a key's entry while its last registration failed. It is
// immutable once stored; the next failure replaces it.
type backoffState struct {
	node
	failures int
	until    time.Time
	err      *BackoffError // built once so rejected Gets do not allocate
}

// backoffPolicy computes the wait after the n-th consecutive failure:
// initial·2^(n−1), capped at max, minus a random fraction (jitter·r, r in
// [0,1)) of that value. The jitter only shortens the wait, so the cap holds
// and the wait stays above (1−jitter)·base.
type backoffPolicy struct {
	initial, max time.Duration
	jitter       float64
	rand         func() float64
}

func (p backoffPolicy) delay(failures int) time.Duration {
	d := backoff.Policy{Initial: p.initial, Max: p.max}.Delay(failures)
	if p.jitter > 0 {
		// A misbehaving source cannot stretch the wait past the cap or
		// make it negative: Shorten clamps it.
		d = backoff.Shorten(d, p.jitter, p.rand())
	}
	return d
}

// maxRetryAfter bounds a server's Retry-After when it is longer than
// BackoffMax: a key is parked for what the server asked (asking sooner
// only earns another refusal), but a mistaken huge value does not park it
// for hours.
const maxRetryAfter = 10 * time.Minute

// wait is the backoff after the n-th consecutive failure err: the policy's
// delay, or the server's Retry-After when that is longer. A server that
// said when to come back is not asked again sooner, even after the
// registration's own retries gave up well before that time (a Retry-After
// beyond the registration's budget ends it after one attempt), and not
// sooner than BackoffMax either; only a Retry-After longer than both
// BackoffMax and maxRetryAfter is cut, to the larger of the two.
// Retry-After is not jittered: it is the server's own schedule.
func (p backoffPolicy) wait(n int, err error) time.Duration {
	d := p.delay(n)
	if ra := retryAfter(err); ra > d {
		d = min(ra, max(p.max, maxRetryAfter))
	}
	return d
}

// retryAfter returns the Retry-After a failed registration carried, 0 when
// it has none.
func retryAfter(err error) time.Duration {
	var re *identity.RegistrationError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		return re.RetryAfter
	}
	return 0
}
