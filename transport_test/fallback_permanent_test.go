package transport_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// A thread key backing off after a PERMANENT task-registration failure (a
// 400) is not an outage: the ChatGPT login must not fall back to Bearer
// for the cooldown, and every request on that key gets the registration
// error, whether it met the failure itself or the backoff after it.
func TestPermanentTaskFailureBackoffIsNoFallback(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{"tok-perm"}})
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusBadRequest, Times: 100})
	rt := newEnv(t, envOptions{srv: srv, base: http.DefaultTransport, plain: true,
		credential: userLogin("tok-perm", "acct-perm", "user-perm"), flag: featureflag.New(true)}).rt
	ctx := transport.WithThread(context.Background(), "thread-perm")
	for i := range 3 { // the failure, then the backoff after it
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/models", nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("request %d: status %d, want the registration error (no Bearer fallback)", i, resp.StatusCode)
		}
		if !errors.Is(err, transport.ErrRegistration) {
			t.Fatalf("request %d: %v, want ErrRegistration", i, err)
		}
	}
	if n := rt.Stats().BearerFallbacks; n != 0 {
		t.Errorf("%d Bearer fallbacks after a permanent failure, want 0", n)
	}
	if n := srv.Stats().RequestsByMode[identitytest.ModeBearer]; n != 0 {
		t.Errorf("%d requests reached the server as Bearer", n)
	}
}
