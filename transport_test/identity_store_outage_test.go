package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// errStoreDown is a temporary store failure, as a Redis store reports a
// server it cannot reach.
type errStoreDown struct{}

func (errStoreDown) Error() string   { return "test store: connection refused" }
func (errStoreDown) Temporary() bool { return true }

// flakyStore is a MemoryStore whose loads fail while down is set, and
// which can answer the first save as a fleet store does when another
// replica stored the login's identity first.
type flakyStore struct {
	*credentials.MemoryStore
	down  atomic.Bool
	loads atomic.Int32

	mu     sync.Mutex
	winner *identity.Record // stored in place of the first save, which is refused
}

func (s *flakyStore) LoadAgentIdentity(ctx context.Context, login credentials.Login) (*identity.Record, error) {
	s.loads.Add(1)
	if s.down.Load() {
		return nil, errStoreDown{}
	}
	return s.MemoryStore.LoadAgentIdentity(ctx, login)
}

func (s *flakyStore) SaveAgentIdentity(ctx context.Context, rec *identity.Record) error {
	s.mu.Lock()
	w := s.winner
	s.winner = nil
	s.mu.Unlock()
	if w == nil {
		return s.MemoryStore.SaveAgentIdentity(ctx, rec)
	}
	if err := s.MemoryStore.SaveAgentIdentity(ctx, w); err != nil {
		return err
	}
	return fmt.Errorf("test store: %w (stored runtime %q)", credentials.ErrIdentityExists, w.AgentRuntimeID)
}

// A temporary IdentityStore failure keeps the login on Bearer (one counted,
// announced fallback) only until the store answers: it is asked again
// after the thread cache's initial backoff, doubling per failure up to a
// minute, not after the hour-long provisioning cooldown. When it answers,
// the login provisions and signs.
func TestIdentityStoreOutageRetriesSoon(t *testing.T) {
	acct := uniqueAccount("storeout")
	token := "tok-" + acct
	clk := newFakeClock(wholeSecondNow())
	srv := newIdentityServer(t, identitytest.Options{AccessTokenAccounts: map[string]string{token: acct}, Now: clk.Now})
	store := &flakyStore{MemoryStore: credentials.NewMemoryStore()}
	store.down.Store(true)
	logs := &lockedBuffer{}
	var events fallbackLog
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true,
		credential: userLogin(token, acct, "user-storeout"), // only a login with a known user uses the store
		flag:       featureflag.New(true), fleet: transport.Fleet{IdentityStore: store},
		options: func(o *transport.Options) {
			testhooks.Of(o).Now = clk.Now
			testhooks.Of(o).ThreadCacheOverride = &taskcache.CacheOptions{BackoffInitial: time.Second}
			o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			o.Observer = events.observer()
		}}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	send := func(what string, wantMode string) {
		t.Helper()
		if echo := mustEcho(t, ctx, rt, url, "thread-store"); echo.Mode != wantMode {
			t.Fatalf("%s: mode %q, want %q", what, echo.Mode, wantMode)
		}
	}
	send("store down", identitytest.ModeBearer)
	if n := store.loads.Load(); n != 1 {
		t.Fatalf("%d store loads, want 1", n)
	}
	// Each further failure doubles the wait, up to a minute; the store is
	// not asked before the wait is over.
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		clk.Advance(wait - time.Millisecond)
		send(fmt.Sprintf("failure %d, before its wait", i+1), identitytest.ModeBearer)
		if n := store.loads.Load(); n != int32(i+1) {
			t.Fatalf("failure %d: store asked %d times before the %v wait was over, want %d", i+1, n, wait, i+1)
		}
		clk.Advance(time.Millisecond)
		send(fmt.Sprintf("failure %d, after its wait", i+1), identitytest.ModeBearer)
		if n := store.loads.Load(); n != int32(i+2) {
			t.Fatalf("failure %d: %d store loads after the %v wait, want %d", i+1, n, wait, i+2)
		}
	}
	if s := rt.Stats(); s.BearerFallbacks != 1 || srv.Stats().AgentRegistrations != 0 {
		t.Fatalf("%d fallbacks and %d agent registrations during the outage; want 1 and 0", s.BearerFallbacks, srv.Stats().AgentRegistrations)
	}
	if got := logs.String(); strings.Count(got, "identity store unavailable") != 1 {
		t.Fatalf("log %q: want the outage announced once", got)
	}

	// The store answers: the next request after the wait provisions.
	store.down.Store(false)
	clk.Advance(time.Minute)
	send("store back", identitytest.ModeAssertion)
	if st := srv.Stats(); st.AgentRegistrations != 1 {
		t.Fatalf("%d agent registrations after the outage, want 1", st.AgentRegistrations)
	}
	if ev := events.all(); len(ev) != 2 || ev[0].Detail != "start" || ev[0].Duration != time.Second ||
		ev[1].Detail != "end" {
		t.Fatalf("fallback events %+v: want a start (1 s) and an end", ev)
	}
}

// When the store refuses the save because another process stored an
// identity for the login first, the request signs with the stored winner,
// not with the identity this process registered.
func TestIdentityStoreExistingWinnerSigns(t *testing.T) {
	acct := uniqueAccount("winner")
	token := "tok-" + acct
	srv := newIdentityServer(t, identitytest.Options{AccessTokenAccounts: map[string]string{token: acct}})
	winner := newRuntime(t, srv, acct, false)
	winner.ChatGPTUserID = "user-w"
	store := &flakyStore{MemoryStore: credentials.NewMemoryStore(), winner: &winner}
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: userLogin(token, acct, "user-w"),
		flag: featureflag.New(true), fleet: transport.Fleet{IdentityStore: store}}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	for i := range 3 {
		echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "thread-winner")
		if echo.Mode != identitytest.ModeAssertion || echo.AgentRuntimeID != winner.AgentRuntimeID {
			t.Fatalf("request %d: mode %q runtime %q, want an assertion by the stored winner %q",
				i, echo.Mode, echo.AgentRuntimeID, winner.AgentRuntimeID)
		}
	}
	if got, err := store.MemoryStore.LoadAgentIdentity(ctx, credentials.Login{AccountID: acct, UserID: "user-w"}); err != nil ||
		got == nil || got.AgentRuntimeID != winner.AgentRuntimeID {
		t.Fatalf("stored identity %v, %v: want the winner kept", got, err)
	}
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Fatalf("%d agent registrations, want 1 (the loser's)", n)
	}
}
