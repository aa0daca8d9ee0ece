package transport_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// fltFaultCase is one row of the fault matrix, run against the task
// registration, agent registration and resource routes.
type fltFaultCase struct {
	name  string
	fault identitytest.Fault // Times is set by each route's test
	// agentFault replaces fault on the agent-registration route when set.
	agentFault *identitytest.Fault
	// temporary is what Error.Temporary must say for a registration route
	// (and, for agent registration, whether the login falls back to Bearer).
	temporary bool
	// status is the HTTP status the *identity.RegistrationError carries.
	status int
	// retryAfter is the Retry-After it carries.
	retryAfter time.Duration
	// cause is a sentinel the error must match (registration routes).
	cause, agentCause error
	// slow and drop: the resource route gets no response at all.
	slow, drop bool
	// taskOnly faults mean nothing on the other routes; registrationOnly
	// ones mean nothing on a resource.
	taskOnly, registrationOnly bool
}

var fltFaultCases = []fltFaultCase{
	{name: "500", fault: identitytest.Fault{Status: 500}, temporary: true, status: 500},
	{name: "503-retry-after", fault: identitytest.Fault{Status: 503, RetryAfter: "1"}, temporary: true, status: 503, retryAfter: time.Second},
	{name: "429", fault: identitytest.Fault{Status: 429}, temporary: true, status: 429},
	{name: "400", fault: identitytest.Fault{Status: 400}, status: 400},
	{name: "403", fault: identitytest.Fault{Status: 403}, status: 403},
	{name: "slower-than-timeout", fault: identitytest.Fault{Latency: 5 * time.Second}, temporary: true,
		cause: context.DeadlineExceeded, slow: true},
	{name: "dropped-connection", fault: identitytest.Fault{DropConnection: true}, temporary: true, drop: true},
	{name: "malformed-json", fault: identitytest.Fault{Body: []byte(`{"task_id": "unterminated`)},
		cause: identity.ErrMalformedResponse, agentCause: identity.ErrMalformedResponse},
	{name: "oversized-body", fault: identitytest.Fault{OversizeBytes: identity.DefaultMaxResponseBytes + 4096},
		cause: identity.ErrResponseTooLarge, agentCause: identity.ErrResponseTooLarge},
	{name: "undecryptable-id", fault: identitytest.Fault{BadEncryptedTaskID: true}, cause: identity.ErrSealedTaskID, taskOnly: true},
	{name: "empty-id", fault: identitytest.Fault{EmptyTaskID: true}, cause: identity.ErrMissingTaskID,
		agentFault: &identitytest.Fault{Body: []byte(`{"agent_runtime_id":""}`)}, agentCause: identity.ErrMissingRuntimeID,
		registrationOnly: true},
}

// fltCheckRegErr checks the error of a request whose registration failed:
// the transport error kind and mode, Temporary as the case says, the
// registration error with its status, Retry-After and cause.
func fltCheckRegErr(t *testing.T, err, kind error, mode resolver.Mode, c fltFaultCase, cause error) {
	t.Helper()
	if err == nil {
		t.Fatal("request succeeded during the fault")
	}
	var te *transport.Error
	if !errors.As(err, &te) || !errors.Is(err, kind) {
		t.Fatalf("error %v is not a *transport.Error of kind %v", err, kind)
	}
	if te.Mode != mode {
		t.Errorf("error mode %v, want %v", te.Mode, mode)
	}
	if te.Temporary() != c.temporary || transport.IsTemporary(err) != c.temporary {
		t.Errorf("Temporary() = %v, IsTemporary = %v, want %v: %v", te.Temporary(), transport.IsTemporary(err), c.temporary, err)
	}
	var ie *identity.RegistrationError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v does not carry an *identity.RegistrationError", err)
	}
	if ie.StatusCode != c.status {
		t.Errorf("registration error status %d, want %d", ie.StatusCode, c.status)
	}
	if c.status != 0 && !strings.Contains(err.Error(), strconv.Itoa(c.status)) {
		t.Errorf("error %q does not name status %d", err, c.status)
	}
	if ie.RetryAfter != c.retryAfter {
		t.Errorf("registration error Retry-After %v, want %v", ie.RetryAfter, c.retryAfter)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Errorf("error %v does not match %v", err, cause)
	}
}

// TestFaultMatrixTaskRegistration: each fault on task registration
// gives the caller a typed ErrRegistration error that says whether it is
// temporary; the key then fails fast during its backoff without another
// attempt, other keys register normally, and once the backoff has passed
// (fake clock) the key registers and works.
func TestFaultMatrixTaskRegistration(t *testing.T) {
	for _, c := range fltFaultCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{keyByte: 0x11, shortTimeouts: c.slow})
			f := c.fault
			// A temporary failure is retried within the registration, so
			// the fault lasts for all of its attempts (a slow attempt uses
			// the whole registration bound and is the only one).
			f.Times = 1
			if c.temporary && !c.slow {
				f.Times = identity.DefaultTaskAttempts
			}
			e.srv.InjectFault(identitytest.RouteTaskRegister, f)
			const key, other = "flt-fault-a", "flt-fault-b"

			r := e.do(key)
			fltCheckRegErr(t, r.err, transport.ErrRegistration, resolver.ModeThreadTask, c, c.cause)
			var be *taskcache.BackoffError
			if errors.As(r.err, &be) {
				t.Fatalf("first failure is already a backoff: %v", r.err)
			}
			if st := e.srv.Stats(); st.FaultsServed != f.Times || st.TaskRegistrations != 0 {
				t.Fatalf("server: %d faults, %d registrations; want %d and 0", st.FaultsServed, st.TaskRegistrations, f.Times)
			}
			if n := e.wire.resources.Load(); n != 0 {
				t.Fatalf("%d resource requests sent without a task", n)
			}

			// Inside the backoff: the same failure, fast, without an attempt.
			e.clock.Advance(firstBackoff - time.Millisecond)
			r = e.do(key)
			fltCheckRegErr(t, r.err, transport.ErrRegistration, resolver.ModeThreadTask, c, c.cause)
			if !errors.As(r.err, &be) || be.Key != key {
				t.Fatalf("request inside the backoff: %v, want a *taskcache.BackoffError for %q", r.err, key)
			}
			if n := e.wire.registrations.Load(); n != int64(f.Times) {
				t.Fatalf("%d registration attempts, want %d (none inside the backoff)", n, f.Times)
			}

			// Other keys are unaffected.
			e.mustAssertion(e.do(other), other)

			// Past the backoff, with the fault gone: one new attempt, which works.
			e.clock.Advance(time.Millisecond)
			e.mustAssertion(e.do(key), key)
			if st := e.srv.Stats(); st.RegistrationsByExternalRef[key] != 1 || st.RegistrationsByExternalRef[other] != 1 {
				t.Fatalf("registrations by thread %v, want one each", st.RegistrationsByExternalRef)
			}
			if s := e.rt.Stats(); s.Failures != 2 || s.ThreadRegistrations != 2 {
				t.Fatalf("stats %+v: want 2 failures and 2 thread registrations", s)
			}
			e.checkNoSecrets()
		})
	}
}

// TestFaultMatrixAgentRegistration: with the flag on, a temporary fault
// on agent registration (after three attempts) puts the login on Bearer for
// the cooldown, and a permanent one is a typed ErrProvisioning error that
// is not retried until its backoff has passed. Another login provisioned
// before the outage keeps signing new threads, and after the cooldown or
// backoff (fake clock), with the fault gone, the login is provisioned.
func TestFaultMatrixAgentRegistration(t *testing.T) {
	for _, c := range fltFaultCases {
		if c.taskOnly {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{chatGPT: true, keyByte: 0x22, shortTimeouts: c.slow})
			sib, sibAccount := e.sibling(0x23)
			ctx, cancel := context.WithTimeout(context.Background(), shortWait)
			defer cancel()
			fltCheckSibling(t, post(ctx, sib, e.url, "flt-sibling-1"), "flt-sibling-1", sibAccount)

			f := c.fault
			if c.agentFault != nil {
				f = *c.agentFault
			}
			e.srv.InjectFault(identitytest.RouteAgentRegister, f) // until cleared
			const key = "flt-fault-a"
			wantAttempts := 1
			if c.temporary {
				wantAttempts = identity.DefaultAgentAttempts
				e.mustBearer(e.do(key))
				if s := e.rt.Stats(); s.BearerFallbacks != 1 || s.AgentRegistrations != 0 {
					t.Fatalf("stats %+v: want 1 Bearer fallback and no agent registration", s)
				}
				// Inside the cooldown: Bearer again, no attempt.
				e.clock.Advance(30 * time.Second)
				e.mustBearer(e.do("flt-fault-b"))
				if s := e.rt.Stats(); s.BearerFallbacks != 1 {
					t.Fatalf("BearerFallbacks = %d inside the cooldown, want still 1", s.BearerFallbacks)
				}
			} else {
				c.retryAfter = 0 // only temporary faults are retried
				fltCheckRegErr(t, e.do(key).err, transport.ErrProvisioning, resolver.ModeProcessTask, c, c.agentCause)
				e.clock.Advance(29 * time.Second)
				fltCheckRegErr(t, e.do(key).err, transport.ErrProvisioning, resolver.ModeProcessTask, c, c.agentCause)
			}
			if st := e.srv.Stats(); st.FaultsServed != wantAttempts {
				t.Fatalf("agent registration attempted %d times, want %d", st.FaultsServed, wantAttempts)
			}
			// The other login is unaffected while the fault lasts.
			fltCheckSibling(t, post(ctx, sib, e.url, "flt-sibling-2"), "flt-sibling-2", sibAccount)

			// Past the cooldown / backoff, with the fault gone.
			e.srv.ClearFaults(identitytest.RouteAgentRegister)
			e.clock.Advance(time.Minute)
			e.mustAssertion(e.do(key), key)
			if st := e.srv.Stats(); st.AgentRegistrations != 2 || st.FaultsServed != wantAttempts {
				t.Fatalf("server: %d agent registrations, %d faults; want 2 and %d", st.AgentRegistrations, st.FaultsServed, wantAttempts)
			}
			e.checkNoSecrets()
		})
	}
}

// fltCheckSibling fails unless r was signed with an assertion of account
// on thread.
func fltCheckSibling(t *testing.T, r result, thread, account string) {
	t.Helper()
	if r.err != nil || r.status != http.StatusOK || r.echo.Mode != identitytest.ModeAssertion ||
		r.echo.ExternalTaskRef != thread || r.echo.AccountID != account {
		t.Fatalf("other login on %q: err %v status %d echo %+v", thread, r.err, r.status, r.echo)
	}
}

// TestFaultMatrixResource: a fault on a protected resource is the
// server's answer, and the transport returns it as is — the response with
// its status, headers and body, or the base transport's own error — not an
// authentication error; the thread's task is kept (no re-registration, no
// replay) and the next requests work.
func TestFaultMatrixResource(t *testing.T) {
	for _, c := range fltFaultCases {
		if c.taskOnly || c.registrationOnly {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{keyByte: 0x33})
			const key, other = "flt-fault-a", "flt-fault-b"
			first := e.do(key)
			e.mustAssertion(first, key)

			f := c.fault
			f.Times = 1
			e.srv.InjectFault(identitytest.RouteResource, f)
			ctx, cancel := context.WithTimeout(context.Background(), shortWait)
			if c.slow {
				cancel()
				ctx, cancel = context.WithTimeout(context.Background(), slowTimeout) // the caller's own timeout
			}
			r := post(ctx, e.rt, e.url, key)
			cancel()
			var te *transport.Error
			switch {
			case c.slow || c.drop:
				if r.err == nil || errors.As(r.err, &te) {
					t.Fatalf("got status %d / error %v, want the base transport's error unwrapped", r.status, r.err)
				}
				if c.slow && !errors.Is(r.err, context.DeadlineExceeded) {
					t.Fatalf("error %v does not match context.DeadlineExceeded", r.err)
				}
				e.errs = append(e.errs, r.err)
			default:
				if r.err != nil {
					t.Fatalf("got error %v, want the server's response", r.err)
				}
				wantStatus, wantBody := f.Status, f.Body
				if wantStatus == 0 {
					wantStatus = http.StatusOK
				}
				if wantBody == nil && f.OversizeBytes == 0 {
					wantBody = []byte(`{"error":"injected_fault"}`)
				}
				if r.status != wantStatus {
					t.Fatalf("status %d, want %d", r.status, wantStatus)
				}
				if f.OversizeBytes > 0 && len(r.body) != f.OversizeBytes {
					t.Fatalf("body of %d bytes, want all %d", len(r.body), f.OversizeBytes)
				}
				if wantBody != nil && !bytes.Equal(r.body, wantBody) {
					t.Fatalf("body %q, want %q", r.body, wantBody)
				}
				if got := r.header.Get("Retry-After"); got != f.RetryAfter {
					t.Fatalf("Retry-After %q, want %q", got, f.RetryAfter)
				}
			}
			if s := e.rt.Stats(); s.Failures != 0 || s.Replays != 0 {
				t.Fatalf("stats %+v: a resource fault must not count as an auth failure or be replayed", s)
			}

			next := e.do(key)
			e.mustAssertion(next, key)
			if next.echo.TaskID != first.echo.TaskID {
				t.Fatalf("task changed from %q to %q after a resource fault", first.echo.TaskID, next.echo.TaskID)
			}
			e.mustAssertion(e.do(other), other)
			if st := e.srv.Stats(); st.ThreadTaskRegistrations != 2 {
				t.Fatalf("%d thread registrations, want 2 (the fault must not re-register)", st.ThreadTaskRegistrations)
			}
			e.checkNoSecrets()
		})
	}
}

// TestAgentTimeoutValidated: Tuning.AgentTimeout (which the
// slower-than-timeout agent case above relies on) rejects a negative value
// at New.
func TestAgentTimeoutValidated(t *testing.T) {
	_, err := tryEnv(t, envOptions{base: &fltNoNetwork{}, production: true, plain: true, noCredential: true, options: func(o *transport.Options) {
		o.Tuning.AgentTimeout = -time.Second
	}})
	if err == nil || !strings.Contains(err.Error(), "AgentTimeout") {
		t.Fatalf("New with a negative AgentTimeout: %v, want an error naming it", err)
	}
}
