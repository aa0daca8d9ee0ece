package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fallbackLog records the observer's fallback events.
type fallbackLog struct {
	mu     sync.Mutex
	events []transport.Event
}

func (l *fallbackLog) observer() *transport.Observer {
	return &transport.Observer{OnEvent: func(_ context.Context, ev transport.Event) {
		if ev.Op != transport.OpFallback {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.events = append(l.events, ev)
	}}
}

func (l *fallbackLog) all() []transport.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]transport.Event(nil), l.events...)
}

// For an identity provisioned from a ChatGPT login (flag on), a task
// registration still unavailable after its attempts puts the login on
// Bearer for the cooldown, announced (a warning, an observer event) and
// counted once however many requests met the outage; the identity is kept
// and signs again after the cooldown. A user-given Agent Identity has no
// Bearer token: it keeps getting the typed, temporary registration error.
func TestTaskOutageFallsBackToBearerForProvisionedIdentity(t *testing.T) {
	const cooldown = 10 * time.Minute
	acct := uniqueAccount("taskout")
	token := "tok-" + acct
	clk := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}, Now: clk.Now})
	logs := &lockedBuffer{}
	var events fallbackLog
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.BearerToken(token, acct, false),
		flag: featureflag.New(true), options: func(cfg *transport.Options) {
			testhooks.Of(cfg).Now = clk.Now
			cfg.Tuning.ProvisioningCooldown = cooldown
			cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			cfg.Observer = events.observer()
		}}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	first := mustEcho(t, ctx, rt, url, "thread-before")
	if first.Mode != identitytest.ModeAssertion {
		t.Fatalf("first request: mode %q, want an assertion", first.Mode)
	}

	// The outage outlasts the registration's own attempts; 20 requests on
	// new threads meet it at once.
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusServiceUnavailable})
	err := startTogether(20, func(i int) error {
		status, echo, err := roundTripEcho(ctx, rt, url, fmt.Sprintf("thread-outage-%d", i))
		if err != nil {
			return err
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeBearer {
			return fmt.Errorf("status %d mode %q, want Bearer", status, echo.Mode)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("during the task-registration outage: %v", err)
	}
	// A thread that has its task also uses Bearer during the cooldown: the
	// login as a whole falls back, as it does when provisioning fails.
	if echo := mustEcho(t, ctx, rt, url, "thread-before"); echo.Mode != identitytest.ModeBearer {
		t.Fatalf("cached thread during the cooldown: mode %q, want Bearer", echo.Mode)
	}
	if n := rt.Stats().BearerFallbacks; n != 1 {
		t.Fatalf("%d fallbacks counted, want 1", n)
	}
	if got := logs.String(); strings.Count(got, "task registration unavailable") != 1 || strings.Contains(got, token) {
		t.Fatalf("warning log %q: want one announcement, without the token", got)
	}
	if ev := events.all(); len(ev) != 1 || ev[0].Detail != "start" || ev[0].StatusCode != http.StatusServiceUnavailable || ev[0].Duration != cooldown {
		t.Fatalf("fallback events %+v, want one start for a 503 with the cooldown", ev)
	}
	faults := srv.Stats().FaultsServed

	// Still inside the cooldown: no registration is tried.
	clk.Advance(cooldown - time.Second)
	if echo := mustEcho(t, ctx, rt, url, "thread-late"); echo.Mode != identitytest.ModeBearer {
		t.Fatalf("late in the cooldown: mode %q, want Bearer", echo.Mode)
	}
	if n := srv.Stats().FaultsServed; n != faults {
		t.Fatalf("%d task-registration attempts during the cooldown, want none", n-faults)
	}

	// After the cooldown the kept identity signs again; the end is reported.
	srv.ClearFaults(identitytest.RouteTaskRegister)
	clk.Advance(time.Second)
	after := mustEcho(t, ctx, rt, url, "thread-after")
	if after.Mode != identitytest.ModeAssertion || after.AgentRuntimeID != first.AgentRuntimeID {
		t.Fatalf("after the cooldown: mode %q runtime %q, want an assertion by %q", after.Mode, after.AgentRuntimeID, first.AgentRuntimeID)
	}
	if ev := events.all(); len(ev) != 2 || ev[1].Detail != "end" || ev[1].Duration != cooldown {
		t.Fatalf("fallback events %+v, want the end after %v", ev, cooldown)
	}
	if st := srv.Stats(); st.AgentRegistrations != 1 || rt.Stats().BearerFallbacks != 1 {
		t.Fatalf("%d agent registrations, %d fallbacks; want 1 and 1", st.AgentRegistrations, rt.Stats().BearerFallbacks)
	}
}

// A user-given Agent Identity meets the same outage with the typed,
// temporary registration error and never goes out as Bearer.
func TestTaskOutageIsTypedErrorForUserIdentity(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	rec := newRuntime(t, srv, uniqueAccount("useroutage"), false)
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, rec)}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: identity.DefaultTaskAttempts})
	_, _, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "thread-user")
	if !errors.Is(err, transport.ErrRegistration) || !transport.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary ErrRegistration", err)
	}
	if n := srv.Stats().RequestsByMode[identitytest.ModeBearer]; n != 0 || rt.Stats().BearerFallbacks != 0 {
		t.Fatalf("%d Bearer requests, %d fallbacks; want none", n, rt.Stats().BearerFallbacks)
	}
}

// A task registration the server rejects (400) is not an outage: the
// request fails with the registration error, and so does one that meets the
// key's backoff afterwards; neither puts the login on Bearer. (A request
// inside the backoff used to count as an outage and fall back.)
func TestRejectedTaskRegistrationDoesNotFallBack(t *testing.T) {
	acct := uniqueAccount("taskreject")
	token := "tok-" + acct
	clk := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}, Now: clk.Now})
	var events fallbackLog
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.BearerToken(token, acct, false),
		flag: featureflag.New(true), options: func(cfg *transport.Options) {
			testhooks.Of(cfg).Now = clk.Now
			cfg.Observer = events.observer()
		}}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusBadRequest})
	for i, want := range []string{"rejected", "inside the backoff"} {
		_, _, err := roundTripEcho(ctx, rt, url, "thread-rejected")
		if !errors.Is(err, transport.ErrRegistration) || transport.IsTemporary(err) {
			t.Fatalf("request %d (%s): %v, want a permanent registration error", i, want, err)
		}
	}
	if evs := events.all(); len(evs) != 0 {
		t.Fatalf("a rejected registration announced a Bearer fallback: %+v", evs)
	}
}

// One provisioning outage is one fallback, however many requests waited
// for it.
func TestFallbackCountedOncePerOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok"}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: http.StatusServiceUnavailable})
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.BearerToken("tok", uniqueAccount("fb"), false),
		flag: featureflag.New(true)}).rt
	var bearer atomic.Int32
	err := runWorkers(10, 10, func(int) error {
		status, echo, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/responses", "")
		if err == nil && (status != http.StatusOK || echo.Mode != identitytest.ModeBearer) {
			err = errors.New("not served with Bearer during the outage")
		}
		if err == nil {
			bearer.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Stats().BearerFallbacks; got != 1 {
		t.Fatalf("BearerFallbacks = %d for one outage, want 1", got)
	}
}
