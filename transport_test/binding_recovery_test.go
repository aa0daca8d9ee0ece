package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// With MaxConnsPerHost 4, the AuthAPI on the same host and 8 concurrent
// requests on a revoked task, every request recovers: each 401 is read and
// closed before the re-registration, so a connection is free for it.
func TestBindingUnauthorizedDrainedBeforeRecovery(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	base := &http.Transport{MaxConnsPerHost: 4, MaxIdleConnsPerHost: 4}
	t.Cleanup(base.CloseIdleConnections)
	rt := newEnv(t, envOptions{srv: srv, base: base, plain: true,
		credential: agentCred(t, newRuntime(t, srv, uniqueAccount("drain"), false)),
		options:    func(o *transport.Options) { o.Tuning.RegistrationTimeout = 3 * time.Second }}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	first := mustEcho(t, ctx, rt, url, "drain-thread")
	srv.RevokeTask(first.TaskID)
	start := time.Now()
	err := startTogether(8, func(i int) error {
		status, _, err := roundTripEcho(ctx, rt, url, "drain-thread")
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("request %d: status %d, err %v; want recovered", i, status, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("recovery took %v: the registration waited for a connection", d)
	}
}

// An identity provisioned from a ChatGPT login whose runtime the AuthAPI
// no longer knows (stored, then forgotten by the server) is provisioned
// again once and replaced in the store; a user-given identity gets a clear
// permanent error naming its runtime.
func TestBindingStaleIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	acct := uniqueAccount("stale")
	tok := credentials.Token{AccessToken: identity.Secret("tok-" + acct), AccountID: acct, UserID: "user-stale"}
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{tok.AccessToken.Reveal()}})
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	gone := identity.Record{AgentRuntimeID: "rt-forgotten", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID: acct, ChatGPTUserID: tok.UserID}
	store := credentials.NewMemoryStore()
	if err := store.SaveAgentIdentity(ctx, &gone); err != nil {
		t.Fatal(err)
	}
	rt := loginTransport(t, srv, newHTTPBase(t), newLoginSource(tok), store)
	echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "stale-thread")
	if echo.Mode != identitytest.ModeAssertion || echo.AgentRuntimeID == gone.AgentRuntimeID || srv.Stats().AgentRegistrations != 1 {
		t.Fatalf("mode %q runtime %q after %d agent registrations; want a new runtime after 1",
			echo.Mode, echo.AgentRuntimeID, srv.Stats().AgentRegistrations)
	}
	stored, err := store.LoadAgentIdentity(ctx, tok.Login())
	if err != nil || stored == nil || stored.AgentRuntimeID != echo.AgentRuntimeID {
		t.Fatalf("store holds %v (%v), want the new runtime", stored, err)
	}

	user := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, gone)}).rt
	_, _, err = roundTripEcho(ctx, user, srv.URL()+"/v1/responses", "")
	if !errors.Is(err, transport.ErrStaleIdentity) || !strings.Contains(err.Error(), fmt.Sprintf("%q", gone.AgentRuntimeID)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("(status %d)", http.StatusNotFound)) ||
		transport.IsTemporary(err) || !errors.Is(err, transport.ErrRegistration) {
		t.Fatalf("user-given stale identity: %v; want a permanent ErrStaleIdentity naming %q", err, gone.AgentRuntimeID)
	}
}
