package transport_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/transport"
)

// recRetryClient is a retryablehttp client over rt, layered as
// docs/configuration.md recommends: retries outermost, so every attempt runs the
// agentauth transport (and is signed) again.
func recRetryClient(rt http.RoundTripper) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient.Transport = rt
	c.CheckRetry = transport.RetryPolicy(retryablehttp.DefaultRetryPolicy)
	c.RetryWaitMin = time.Millisecond
	c.RetryWaitMax = 2 * time.Millisecond
	c.RetryMax = 3
	c.Logger = nil
	return c
}

// TestRetryablehttpResigns: a 503 then 200 from the resource is retried;
// each attempt carries its own AgentAssertion (the second is signed at the
// clock's new second and accepted) and the same body bytes.
func TestRetryablehttpResigns(t *testing.T) {
	e := newEnv(t, envOptions{front: true})
	const key = "thread-retry"
	e.srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: 1})
	counting := &countingRT{next: e.rt}
	client := recRetryClient(counting)
	client.RequestLogHook = func(_ retryablehttp.Logger, _ *http.Request, attempt int) {
		if attempt == 1 {
			e.clock.Advance(2 * time.Second) // the retry happens in a later second
		}
	}

	body := numberedBody(3, 16<<10)
	req, err := retryablehttp.NewRequestWithContext(transport.WithThread(context.Background(), key),
		http.MethodPost, e.base+"/v1/responses", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d after the retry", resp.StatusCode)
	}

	seen := e.front.Seen()
	if len(seen) != 2 || counting.calls.Load() != 2 {
		t.Fatalf("%d attempts reached the server through %d RoundTrips, want 2 and 2", len(seen), counting.calls.Load())
	}
	for i, s := range seen {
		if !strings.HasPrefix(s.auth, "AgentAssertion ") || !bytes.Equal(s.body, body) {
			t.Fatalf("attempt %d: assertion %t, %d of %d body bytes", i+1,
				strings.HasPrefix(s.auth, "AgentAssertion "), len(s.body), len(body))
		}
	}
	if seen[0].auth == seen[1].auth {
		t.Fatal("the retry reused the first attempt's assertion instead of being signed again")
	}
	st := e.srv.Stats()
	if st.FaultsServed != 1 || st.RequestsByMode[identitytest.ModeAssertion] != 1 || st.RegistrationsByExternalRef[key] != 1 {
		t.Fatalf("server: %d faults, %d accepted assertions, %d registrations; want 1, 1, 1",
			st.FaultsServed, st.RequestsByMode[identitytest.ModeAssertion], st.RegistrationsByExternalRef[key])
	}
	if got := e.rt.Stats().Signatures; got != 2 {
		t.Fatalf("%d signatures, want one per attempt", got)
	}
}

// TestRetryablehttpPermanent: authentication errors the transport marks
// permanent are not retried, and a panicking registration client becomes
// an error instead of crashing the process.
func TestRetryablehttpPermanent(t *testing.T) {
	panicking := &http.Client{Transport: panicRT{}}
	for _, tc := range []struct {
		name    string
		thread  string // "" for the process task
		fault   *identitytest.Fault
		regs    *http.Client
		cancel  bool // a cancellable context (the flight runs on its own goroutine)
		wantIs  error
		wantReg int // registration attempts the server saw
	}{
		{name: "invalid thread key", thread: "bad\nkey", wantIs: transport.ErrInvalidThreadKey},
		{name: "403 at registration", thread: "thread-forbidden", fault: &identitytest.Fault{Status: http.StatusForbidden},
			wantIs: transport.ErrRegistration, wantReg: 1},
		{name: "panic in thread registration", thread: "thread-panic", regs: panicking, cancel: true,
			wantIs: taskcache.ErrRegistrationPanic},
		{name: "panic in process registration", regs: panicking, wantIs: taskcache.ErrRegistrationPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{front: true, options: func(o *transport.Options) {
				o.HTTPClient = tc.regs
			}})
			if tc.fault != nil {
				e.srv.InjectFault(identitytest.RouteTaskRegister, *tc.fault)
			}
			counting := &countingRT{next: e.rt}
			client := recRetryClient(counting)

			ctx := context.Background()
			if tc.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			if tc.thread != "" {
				ctx = transport.WithThread(ctx, tc.thread)
			}
			// The second request finds the key backing off after the first
			// failure; a backoff after a permanent failure is permanent too.
			for i := int64(1); i <= 2; i++ {
				req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/responses", []byte("{}"))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request %d: status %d, want an error", i, resp.StatusCode)
				}
				var te *transport.Error
				if !errors.Is(err, tc.wantIs) || !errors.As(err, &te) || te.Temporary() {
					t.Fatalf("request %d: error %v, want a permanent *transport.Error matching %v", i, err, tc.wantIs)
				}
				var ie *identity.RegistrationError
				if tc.fault != nil && (!errors.As(err, &ie) || ie.StatusCode != http.StatusForbidden) {
					t.Fatalf("request %d: error %v does not carry the registration's 403", i, err)
				}
				if got := counting.calls.Load(); got != i {
					t.Fatalf("request %d: RoundTrip called %d times in all, want %d (no retry)", i, got, i)
				}
			}
			if got := e.front.Attempts(tc.thread); got != tc.wantReg {
				t.Fatalf("%d registration attempts reached the server, want %d", got, tc.wantReg)
			}
			if tc.fault != nil && e.srv.Stats().FaultsServed != 1 {
				t.Fatalf("%d registrations answered 403, want 1", e.srv.Stats().FaultsServed)
			}
			if len(e.front.Seen()) != 0 {
				t.Fatal("a request reached the resource without a credential")
			}
		})
	}
}
