package transport

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// An identity read back from the IdentityStore (auth.json for a Codex
// login) is not a provisioning: its event says Loaded, so a provisioning
// count (otelauth's agentauth.agent.provisionings) does not go up.
func TestProvisioningEventSaysLoadedForAStoredIdentity(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"tok-loaded-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	store := credentials.NewMemoryStore()
	creds := &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{
		AccessToken: "tok-loaded-0123456789", AccountID: "acct-loaded", UserID: "user-loaded"}}
	for i, wantLoaded := range []bool{false, true} {
		var rec recorder
		rt, c := observedTransport(t, srv, config{Credentials: creds, Flag: featureflag.New(true), IdentityStore: store, Observer: rec.observer(false)})
		if code := get(t, c, context.Background(), srv.URL()+"/v1/models"); code != http.StatusOK {
			t.Fatalf("transport %d: status %d", i, code)
		}
		rec.mu.Lock()
		provs := rec.provs
		rec.mu.Unlock()
		if len(provs) != 1 || provs[0].Err != nil || (provs[0].Detail == "loaded") != wantLoaded {
			t.Errorf("transport %d: provisioning events %+v, want one success loaded %v", i, provs, wantLoaded)
		}
		if got, want := rt.Stats().AgentRegistrations, map[bool]uint64{false: 1, true: 0}[wantLoaded]; got != want {
			t.Errorf("transport %d: AgentRegistrations %d, want %d", i, got, want)
		}
	}
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Errorf("the server registered %d agents, want 1", n)
	}
}
