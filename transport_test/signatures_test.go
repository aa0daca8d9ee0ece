package transport_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// TestSignaturesOnePerTaskPerSecond proves the one-signature-per-second
// guarantee: at any request rate a task is signed at most once per second,
// the header is byte-identical within the second, and the next second
// re-signs exactly once.
func TestSignaturesOnePerTaskPerSecond(t *testing.T) {
	clk := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{Now: clk.Now})
	ident := newRuntime(t, srv, uniqueAccount("sig"), false)
	base := newStubBase(srv.Handler())
	rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: agentCred(t, ident),
		options: func(o *transport.Options) { testhooks.Of(o).Now = clk.Now }}).rt

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	const n = 10_000
	err := runWorkers(n, 8, func(i int) error {
		if i%1000 == 999 {
			// Sub-second ticks must not re-sign either.
			clk.Advance(time.Millisecond)
		}
		return stubSend(ctx, rt, url, "sig-thread")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := base.resources.Load(); got != n {
		t.Fatalf("base saw %d resource requests, want %d", got, n)
	}
	if got := rt.Stats().Signatures; got != 1 {
		t.Fatalf("%d requests within one second made %d signatures, want 1", n, got)
	}
	if got := base.distinctAuth(); got != 1 {
		t.Fatalf("%d distinct Authorization values within one second, want 1 (byte-identical)", got)
	}
	if got := srv.Stats().ThreadTaskRegistrations; got != 1 {
		t.Fatalf("thread registrations = %d, want 1", got)
	}

	clk.Advance(time.Second)
	for range 100 {
		if err := stubSend(ctx, rt, url, "sig-thread"); err != nil {
			t.Fatal(err)
		}
	}
	if got := rt.Stats().Signatures; got != 2 {
		t.Fatalf("after one more second: %d signatures, want 2", got)
	}
	if got := base.distinctAuth(); got != 2 {
		t.Fatalf("after one more second: %d distinct Authorization values, want 2", got)
	}
	if err := base.parseError(); err != nil {
		t.Fatalf("an assertion did not parse: %v", err)
	}
	a, err := identity.ParseAssertion(base.last().Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if want := identity.FormatTimestamp(clk.Now()); a.Timestamp != want {
		t.Fatalf("re-signed assertion timestamp %q, want %q", a.Timestamp, want)
	}
	if strings.Contains(fmt.Sprint(a), a.Signature.Reveal()) {
		t.Fatal("a printed Assertion shows the signature")
	}
}
