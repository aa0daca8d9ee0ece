package otelauth_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/otelauth"
	"github.com/agentauth/agentauth/transport"
)

// A second transport that finds the login's identity in the store (as a
// Codex login finds it in auth.json) registers no agent: the provisionings
// counter stays at the one real provisioning, while both spans still end.
func TestIdentityLoadedFromTheStoreIsNotCountedAsAProvisioning(t *testing.T) {
	tel := newTelemetry(t)
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"tok-otel-loaded-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	store := credentials.NewMemoryStore()
	creds := &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{
		AccessToken: "tok-otel-loaded-0123456789", AccountID: "acct-otel-loaded", UserID: "user-otel-loaded"}}
	for range 2 {
		rt, _ := newTransport(t, srv, transport.Options{Credential: testCredential(creds), AgentIdentity: featureflag.New(true), Fleet: transport.Fleet{IdentityStore: store},
			Observer: otelauth.Observer(tel.mp, tel.tp)})
		if code := do(t, rt, context.Background(), srv.URL()+"/v1/models"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Fatalf("%d agent registrations, want 1", n)
	}
	ok := map[string]string{"agentauth.outcome": "success"}
	if n, found := sumPoint(t, tel.collect(t), otelauth.MetricProvisionings, ok); !found || n != 1 {
		t.Errorf("%s%v = %d (found %v), want 1", otelauth.MetricProvisionings, ok, n, found)
	}
	if spans := tel.ended(otelauth.SpanProvisioning); len(spans) != 2 {
		t.Errorf("%d provisioning spans ended, want 2 (every started span ends)", len(spans))
	}
}
