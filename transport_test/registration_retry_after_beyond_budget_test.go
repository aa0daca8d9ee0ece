package transport_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/transport"
)

// A task registration answered 429 with Retry-After: 120, longer than the
// registration's 30 s budget, fails the request after one registration
// request (no capped retries holding it), with a temporary ErrRegistration
// carrying the RetryAfter; the key is not registered again before those
// 120 s on the transport's clock, though BackoffMax defaults to 1 min.
func TestRegistrationRetryAfterBeyondBudget(t *testing.T) {
	e := newEnv(t, envOptions{options: func(o *transport.Options) { o.Tuning.RegistrationTimeout = 30 * time.Second }})
	e.srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "120"})
	const key = "thread-429"

	r := e.get(key)
	var ie *identity.RegistrationError
	if !errors.Is(r.err, transport.ErrRegistration) || !transport.IsTemporary(r.err) || !errors.As(r.err, &ie) {
		t.Fatalf("429: %v, want a temporary ErrRegistration", r.err)
	}
	if ie.StatusCode != http.StatusTooManyRequests || ie.RetryAfter != 120*time.Second {
		t.Fatalf("registration error: status %d, Retry-After %v; want 429 and 2m0s", ie.StatusCode, ie.RetryAfter)
	}
	if n := e.srv.Stats().FaultsServed; n != 1 {
		t.Fatalf("%d registration requests for one 429 beyond the budget, want 1", n)
	}

	for _, d := range []time.Duration{time.Minute, 60*time.Second - time.Nanosecond} {
		e.clock.Advance(d)
		r = e.get(key)
		var be *taskcache.BackoffError
		if !errors.As(r.err, &be) || !errors.As(r.err, &ie) || ie.RetryAfter != 120*time.Second {
			t.Fatalf("inside the server's 120 s: %v, want a backoff carrying the Retry-After", r.err)
		}
		if n := e.srv.Stats().FaultsServed; n != 1 {
			t.Fatalf("inside the server's 120 s: %d registration requests, want 1", n)
		}
	}
	e.srv.ClearFaults(identitytest.RouteTaskRegister)
	e.clock.Advance(time.Nanosecond)
	e.mustAssertion(e.get(key), key)
}
