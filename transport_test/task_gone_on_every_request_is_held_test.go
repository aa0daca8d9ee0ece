package transport_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// A server that says the task is gone (400/404 invalid_task_id) on every
// request, the fresh task included, gets one re-registration, as a 401 on
// every request does: the fresh task is then held, and later requests
// return the answer instead of registering a task each.
func TestTaskGoneOnEveryRequestRegistersOnce(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound} {
		token := unique("gone-all-token")
		srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
		account := uniqueAccount("gone-all")
		rt := newEnv(t, optIn(srv, newHTTPBase(t), token, account, credentials.NewMemoryStore())).rt
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		url := srv.URL() + "/v1/responses"
		mustEcho(t, ctx, rt, url, "t-gone")
		srv.ResetStats()
		const requests = 4
		srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: status, Body: []byte(`{"error":{"code":"invalid_task_id"}}`), Times: 2 * requests})
		for range requests {
			got, _, err := roundTripEcho(ctx, rt, url, "t-gone")
			if err != nil && got == 0 {
				cancel()
				t.Fatal(err)
			}
			if got != status {
				cancel()
				t.Fatalf("status %d, want the server's %d", got, status)
			}
		}
		cancel()
		if n := srv.Stats().TaskRegistrations; n != 1 {
			t.Fatalf("%d: %d task registrations over %d requests, want 1", status, n, requests)
		}
	}
}
