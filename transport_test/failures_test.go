package transport_test

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// recCheckRegistrationFailure checks what every caller of a failed 503
// registration must see: a transport error of the registration kind that is
// temporary and still carries the server's status.
func recCheckRegistrationFailure(t *testing.T, r result) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("request succeeded (status %d) during a failing registration", r.status)
	}
	if !errors.Is(r.err, transport.ErrRegistration) {
		t.Fatalf("error %v does not match transport.ErrRegistration", r.err)
	}
	var te *transport.Error
	if !errors.As(r.err, &te) || !te.Temporary() || !transport.IsTemporary(r.err) {
		t.Fatalf("error %v is not a temporary *transport.Error", r.err)
	}
	if te.Mode != resolver.ModeThreadTask {
		t.Fatalf("error mode %v, want thread-task", te.Mode)
	}
	var ie *identity.RegistrationError
	if !errors.As(r.err, &ie) || ie.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("error %v does not carry the 503 of the registration", r.err)
	}
}

// TestFailureSharedThenBackoff: 50 concurrent callers of a new thread key
// share one failing registration; the key then backs off (fail fast, no
// registration) until a jittered deadline, after which one new registration
// succeeds and is used. Another key is unaffected throughout.
func TestFailureSharedThenBackoff(t *testing.T) {
	e := newEnv(t, envOptions{front: true})
	const key = "thread-failing"
	gate := newGate(t)
	// One registration makes identity.DefaultTaskAttempts attempts on a
	// 503; all of them fail, the first held at the gate.
	var failed atomic.Int32
	e.front.setOnRegister(func(w http.ResponseWriter, r *http.Request, ref string) bool {
		if ref != key || failed.Load() >= identity.DefaultTaskAttempts {
			return false // later attempts reach the reference server
		}
		if failed.Add(1) == 1 {
			gate.hold(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"overloaded"}`)
		return true
	})
	t0 := e.clock.Now()

	const n = 50
	results := make(chan result, n)
	for range n {
		go func() { results <- e.get(key) }()
	}
	receive(t, gate.arrived, "the failing registration")
	// Every caller is inside the task cache before the attempt ends, so
	// all of them share it (none can arrive late and see only the backoff).
	waitInStack(t, n, taskCacheWait)

	// While that attempt hangs, another key registers independently.
	e.mustAssertion(e.get("thread-healthy"), "thread-healthy")

	gate.open()
	for range n {
		r := receive(t, results, "a caller of the failing registration")
		recCheckRegistrationFailure(t, r)
		var be *taskcache.BackoffError
		if errors.As(r.err, &be) {
			t.Fatalf("a caller got the backoff instead of the shared failure: %v", r.err)
		}
		var re *taskcache.AttemptError
		if !errors.As(r.err, &re) || re.Key != key {
			t.Fatalf("error %v is not the shared *taskcache.AttemptError", r.err)
		}
	}
	if got := e.front.Attempts(key); got != identity.DefaultTaskAttempts {
		t.Fatalf("%d registration attempts for %d concurrent callers, want 1", got, n)
	}

	// Inside the backoff: fail fast with the deadline, no registration.
	e.clock.Advance(firstBackoff - time.Millisecond)
	r := e.get(key)
	recCheckRegistrationFailure(t, r)
	var be *taskcache.BackoffError
	if !errors.As(r.err, &be) {
		t.Fatalf("request inside the backoff: %v, want a *taskcache.BackoffError", r.err)
	}
	if want := t0.Add(firstBackoff); !be.Until.Equal(want) || be.Failures != 1 || be.Key != key {
		t.Fatalf("backoff until %v after %d failures for %q, want until %v after 1 for %q",
			be.Until, be.Failures, be.Key, want, key)
	}
	if got := e.front.Attempts(key); got != identity.DefaultTaskAttempts {
		t.Fatalf("a request inside the backoff made a registration attempt (%d attempts)", got)
	}
	// Other keys are unaffected by this key's backoff.
	e.mustAssertion(e.get("thread-healthy-2"), "thread-healthy-2")

	// At the deadline: exactly one new attempt, whose task is used.
	e.clock.Advance(time.Millisecond)
	r = e.get(key)
	e.mustAssertion(r, key)
	tasks := e.tasks(key)
	if len(tasks) != 1 || r.echo.TaskID != tasks[0].TaskID {
		t.Fatalf("request signed with task %q, server registered %+v", r.echo.TaskID, tasks)
	}
	e.mustAssertion(e.get(key), key)
	if got := e.front.Attempts(key); got != identity.DefaultTaskAttempts+1 {
		t.Fatalf("%d registration attempts after the backoff, want 2", got)
	}
	if got := e.front.Attempts("thread-healthy"); got != 1 {
		t.Fatalf("healthy key: %d registration attempts, want 1", got)
	}
}

// TestFailureInjectedFault: the same sharing against the reference
// server's own fault injection: a slow 503 is served once to 50 callers.
func TestFailureInjectedFault(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{
		Status: http.StatusServiceUnavailable, Latency: 50 * time.Millisecond, Times: identity.DefaultTaskAttempts,
	})
	const key, n = "thread-503", 50
	results := make(chan result, n)
	for range n {
		go func() { results <- e.get(key) }()
	}
	shared := 0
	for range n {
		r := receive(t, results, "a caller")
		recCheckRegistrationFailure(t, r)
		var be *taskcache.BackoffError
		if !errors.As(r.err, &be) {
			shared++
		}
	}
	st := e.srv.Stats()
	if st.FaultsServed != identity.DefaultTaskAttempts || st.TaskRegistrations != 0 {
		t.Fatalf("server served %d faults and %d registrations, want %d and 0", st.FaultsServed, st.TaskRegistrations, identity.DefaultTaskAttempts)
	}
	// Callers that arrived after the attempt ended saw the backoff, not a
	// second attempt; with 50 ms of latency almost all of them share it.
	if shared == 0 {
		t.Fatal("no caller shared the failing attempt")
	}
	t.Logf("%d of %d callers shared the attempt; the rest hit the backoff", shared, n)
}
