package transport_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// tenantFlag is a flag of the caller's own, as a feature-flag service
// would provide: the transport asks it on every request.
type tenantFlag struct {
	on    atomic.Bool
	asked atomic.Int64
}

func (f *tenantFlag) Enabled() bool { f.asked.Add(1); return f.on.Load() }

// Options.AgentIdentity takes any implementation of the one-method interface, read
// per request; a nil *featureflag.Flag means off like a nil Flag.
func TestFlagIsAnInterface(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-flag"}})
	send := func(rt http.RoundTripper) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(transport.WithThread(context.Background(), "thread-flag"), http.MethodGet, srv.URL()+"/v1/models", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e identitytest.Echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return e.Mode
	}
	newRT := func(flag transport.Flag) *transport.Transport {
		return newEnv(t, envOptions{srv: srv, base: http.DefaultTransport, plain: true,
			credential: userLogin("tok-flag", "acct-flag", "user-flag"), flag: flag}).rt
	}

	flag := &tenantFlag{}
	rt := newRT(flag)
	if m := send(rt); m != identitytest.ModeBearer {
		t.Fatalf("flag off: mode %q, want bearer", m)
	}
	flag.on.Store(true)
	if m := send(rt); m != identitytest.ModeAssertion {
		t.Fatalf("flag on: mode %q, want assertion", m)
	}
	if n := flag.asked.Load(); n < 2 {
		t.Errorf("the flag was asked %d times for 2 requests", n)
	}

	var none *featureflag.Flag
	if m := send(newRT(none)); m != identitytest.ModeBearer {
		t.Errorf("nil *featureflag.Flag: mode %q, want bearer", m)
	}
}
