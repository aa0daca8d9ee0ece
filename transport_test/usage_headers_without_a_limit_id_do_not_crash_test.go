package transport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/transport"
)

// The transport reads usage headers from every first-party answer. A
// server that adds x-primary-used-percent (no limit id) to its codex
// usage headers once made
// that read panic inside RoundTrip, taking the caller's process down.
func TestUsageHeadersWithoutALimitIDDoNotCrash(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Codex-Primary-Used-Percent", "10")
		w.Header().Set("X-Primary-Used-Percent", "50")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	base := newHTTPBase(t)
	rt, err := transport.New(base, transport.Options{
		Credential:    transport.APIKey("sk-usage-test"),
		CodexHome:     t.TempDir(),
		AgentIdentity: featureflag.New(false),
		Tuning:        transport.Tuning{AllowedOrigins: []string{srv.URL}, AllowInsecureHTTP: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1/models", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
