// One login, one identity, on one machine: transports built over one Codex
// home (each with its own credentials.FileStore on the same auth.json)
// share one provisioning, and stores that share nothing but the file (two
// processes) register one agent (the provisioning lock beside auth.json)
// and sign with the one stored identity (the file's first identity wins).
package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// usedRuntimes sends n concurrent requests spread over rts and returns the
// runtimes that signed them.
func usedRuntimes(t *testing.T, ctx context.Context, url string, n int, rts ...http.RoundTripper) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	distinct := map[string]bool{}
	err := startTogether(n, func(i int) error {
		status, echo, err := roundTripEcho(ctx, rts[i%len(rts)], url, fmt.Sprintf("home-thread-%d", i%2))
		if err != nil {
			return err
		}
		if status != http.StatusOK || echo.Mode != identitytest.ModeAssertion {
			return fmt.Errorf("status %d mode %q", status, echo.Mode)
		}
		mu.Lock()
		distinct[echo.AgentRuntimeID] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return distinct
}

func TestThreeTransportsOverOneCodexHomeRegisterOneAgent(t *testing.T) {
	const token = "one-home-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	// Keep the registration open so every transport's first request waits.
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Latency: 50 * time.Millisecond, Times: 1})
	account := uniqueAccount("onehome")
	path := writeLoginFile(t, token, account)
	base := newHTTPBase(t)
	var rts []http.RoundTripper
	for range 3 {
		rts = append(rts, newEnv(t, optIn(srv, base, token, account, credentials.NewFileStore(path))).rt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	distinct := usedRuntimes(t, ctx, srv.URL()+"/v1/responses", 30, rts...)
	if st := srv.Stats(); st.AgentRegistrations != 1 || len(distinct) != 1 {
		t.Fatalf("%d agent registrations, %d runtimes used; want 1 and 1", st.AgentRegistrations, len(distinct))
	}
}

// otherProcessStore is a FileStore as another process sees it: the
// transport cannot tell it is the same file, so nothing is shared in
// memory.
type otherProcessStore struct{ *credentials.FileStore }

func TestTwoProcessesOnOneAuthFileSignWithOneIdentity(t *testing.T) {
	const token = "two-proc-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Latency: 50 * time.Millisecond, Times: 2})
	account := uniqueAccount("twoproc")
	path := writeLoginFile(t, token, account)
	base := newHTTPBase(t)
	rt1 := newEnv(t, optIn(srv, base, token, account, otherProcessStore{credentials.NewFileStore(path)})).rt
	rt2 := newEnv(t, optIn(srv, base, token, account, otherProcessStore{credentials.NewFileStore(path)})).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	distinct := usedRuntimes(t, ctx, srv.URL()+"/v1/responses", 20, rt1, rt2)
	stored, err := credentials.NewFileStore(path).LoadAgentIdentity(ctx, credentials.Login{AccountID: account, UserID: "user-" + account})
	if err != nil || stored == nil {
		t.Fatalf("no stored identity: %v", err)
	}
	if len(distinct) != 1 || !distinct[stored.AgentRuntimeID] {
		t.Fatalf("runtimes used %v, stored %q: want only the stored one", distinct, stored.AgentRuntimeID)
	}
	// The provisioning lock beside auth.json lets one of them register.
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Fatalf("%d agent registrations, want 1", n)
	}
	// A third "process" started afterwards reuses it: no registration.
	before := srv.Stats().AgentRegistrations
	rt3 := newEnv(t, optIn(srv, base, token, account, otherProcessStore{credentials.NewFileStore(path)})).rt
	if again := usedRuntimes(t, ctx, srv.URL()+"/v1/responses", 2, rt3); len(again) != 1 || !again[stored.AgentRuntimeID] {
		t.Fatalf("later process used %v", again)
	}
	if n := srv.Stats().AgentRegistrations - before; n != 0 {
		t.Fatalf("later process registered %d agents", n)
	}
}
