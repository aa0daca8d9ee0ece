package redisstore

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// Example_agentauth's wiring, run against the test Redis: replicas on
// separate machines (each its own Codex home holding the same, expired,
// ChatGPT login) built with transport.New and one Store each, with the
// flag on, serve their first request on one thread at once. The fleet
// refreshes the login once, provisions one agent identity and registers
// one task for the thread; no auth.json is written (the fleet's store
// holds the rotation and the identity).
func TestAgentauthFleetReplicas(t *testing.T) {
	const replicas = 3
	addr := redisAddr(t)
	var offset atomic.Int64 // the server's clock runs 2 h late while the login is issued
	offset.Store(int64(-2 * time.Hour))
	srv, err := identitytest.NewServer(identitytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-agentauth-fleet", UserID: "user-agentauth-fleet"})
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(0)

	sealer := newSealer(t, newKey(t))
	prefix, loginPrefix := uniquePrefix(t), uniquePrefix(t)
	homes := make([]string, replicas)
	files := make([][]byte, replicas)
	rts := make([]*transport.Transport, replicas)
	for i := range rts {
		homes[i] = t.TempDir()
		if err := login.WriteAuthJSON(homes[i], time.Now().Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		files[i], _ = os.ReadFile(filepath.Join(homes[i], credentials.AuthFileName))
		store := newSealedStore(t, addr, sealer, Options{Prefix: prefix, LoginPrefix: loginPrefix,
			PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond})
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		// The coordinator the transport's login refreshes on, as the
		// fleet's constructor built it.
		var built credentials.RefreshCoordinator
		coordinators := store.Coordinators(CoordinatorOptions{})
		rts[i], err = transport.New(base, transport.Options{
			CodexHome:     homes[i],
			Getenv:        func(string) string { return "" },
			BaseURL:       srv.URL(), // also the token endpoint
			AgentIdentity: featureflag.New(true),
			HTTPClient:    &http.Client{Transport: base},
			Fleet: transport.Fleet{
				RefreshCoordinator: func(l transport.Login, initial *transport.TokenSet) (transport.RefreshCoordinator, error) {
					c, err := coordinators(l, initial)
					built = c
					return c, err
				},
				IdentityStore: store,
				TaskStore:     store,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rts[i].Close)
		if _, ok := built.(*Coordinator); !ok {
			t.Fatalf("replica %d refreshes on %T, not the fleet's Coordinator", i, built)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echoes := make([]*identitytest.Echo, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, rt := range rts {
		wg.Go(func() {
			<-start
			echoes[i], errs[i] = optInRequest(ctx, &http.Client{Transport: rt}, srv.URL(), "thread-agentauth-fleet")
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if e := echoes[i]; e.AgentRuntimeID != echoes[0].AgentRuntimeID || e.TaskID != echoes[0].TaskID {
			t.Fatalf("replica %d: %+v, replica 0: %+v; want one identity and one task", i, e, echoes[0])
		}
	}
	st := srv.Stats()
	t.Logf("%d replicas: %d token refreshes, %d agent registrations, %d thread registrations, %d reused",
		replicas, st.TokenRefreshes, st.AgentRegistrations, st.ThreadTaskRegistrations, st.RejectionsByReason[identitytest.CodeRefreshTokenReused])
	if st.TokenRefreshes != 1 || st.AgentRegistrations != 1 || st.ThreadTaskRegistrations != 1 || st.Rejections != 0 {
		t.Fatalf("server: %d refreshes, %d agent and %d thread registrations, %d rejections %v; want one each and none",
			st.TokenRefreshes, st.AgentRegistrations, st.ThreadTaskRegistrations, st.Rejections, st.RejectionsByReason)
	}
	for i, home := range homes {
		if now, _ := os.ReadFile(filepath.Join(home, credentials.AuthFileName)); !bytes.Equal(now, files[i]) {
			t.Errorf("replica %d rewrote its auth.json", i)
		}
	}
}
