package redisstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

func TestIdentityStoredPerLogin(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	s := newSealedStore(t, addr, newSealer(t, newKey(t)), Options{})
	rec := testRecord(t, "acct-per-login", "user-a")
	if err := s.SaveAgentIdentity(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAgentIdentity(ctx, credentials.Login{AccountID: rec.AccountID, UserID: rec.ChatGPTUserID})
	if err != nil || got == nil || *got != rec {
		t.Fatalf("load: %v, %v", got, err)
	}
	// Another user of the same workspace has no identity yet.
	if got, err := s.LoadAgentIdentity(ctx, credentials.Login{AccountID: rec.AccountID, UserID: "user-b"}); err != nil || got != nil {
		t.Fatalf("other user: %v, %v", got, err)
	}
	if err := s.SaveAgentIdentity(ctx, nil); err == nil {
		t.Fatal("nil record saved")
	}
	bad := rec
	bad.AgentPrivateKey = "not a key"
	if err := s.SaveAgentIdentity(ctx, &bad); err == nil {
		t.Fatal("record without a usable key saved")
	}
}

// The first identity stored for a login is the fleet's: a later save of
// another one is refused (and says so), the same one again is fine.
func TestIdentityFirstSaveWins(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	sealer := newSealer(t, newKey(t))
	opts := Options{LoginPrefix: uniquePrefix(t)}
	a, b := newSealedStore(t, addr, sealer, opts), newSealedStore(t, addr, sealer, opts)
	first := testRecord(t, "acct-first", "user-first")
	second := testRecord(t, "acct-first", "user-first")
	if err := a.SaveAgentIdentity(ctx, &first); err != nil {
		t.Fatal(err)
	}
	err := b.SaveAgentIdentity(ctx, &second)
	if !errors.Is(err, ErrIdentityExists) {
		t.Fatalf("second identity: %v, want ErrIdentityExists", err)
	}
	if got, err := b.LoadAgentIdentity(ctx, credentials.Login{AccountID: "acct-first", UserID: "user-first"}); err != nil || got.AgentRuntimeID != first.AgentRuntimeID {
		t.Fatalf("fleet identity %v, %v; want the first", got, err)
	}
	if err := b.SaveAgentIdentity(ctx, &first); err != nil {
		t.Fatalf("saving the stored identity again: %v", err)
	}
}

// Eight replicas (Stores) that miss the same login at once provision it
// once: one gets the reservation and registers, the others wait for its
// save and load the same identity.
func TestIdentityProvisioningSingleFlight(t *testing.T) {
	const replicas = 8
	addr := redisAddr(t)
	sealer := newSealer(t, newKey(t))
	opts := Options{LoginPrefix: uniquePrefix(t), PollInterval: 5 * time.Millisecond}
	login := credentials.Login{AccountID: "acct-flight", UserID: "user-flight"}
	var registrations atomic.Int32
	runtimes := make(chan string, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range replicas {
		s := newSealedStore(t, addr, sealer, opts)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			<-start
			rec, err := s.LoadAgentIdentity(ctx, login)
			if err != nil {
				t.Error(err)
				return
			}
			if rec == nil { // provision, as transport does: register, save
				registrations.Add(1)
				r := testRecord(t, login.AccountID, login.UserID)
				rec = &r
				// A transport loads again before it saves; that must not
				// wait for its own reservation.
				if again, err := s.LoadAgentIdentity(ctx, login); err != nil || again != nil {
					t.Errorf("reload by the provisioning replica: %v, %v", again, err)
				}
				if err := s.SaveAgentIdentity(ctx, rec); err != nil {
					t.Error(err)
					return
				}
			}
			runtimes <- rec.AgentRuntimeID
		})
	}
	close(start)
	wg.Wait()
	close(runtimes)
	distinct := map[string]bool{}
	for id := range runtimes {
		distinct[id] = true
	}
	if registrations.Load() != 1 || len(distinct) != 1 {
		t.Fatalf("%d registrations, %d identities in use; want 1 and 1", registrations.Load(), len(distinct))
	}
	if n, err := newClient(t, addr).Keys(context.Background(), opts.LoginPrefix+"*:lock").Result(); err != nil || len(n) != 0 {
		t.Fatalf("provisioning locks left: %v %v", n, err)
	}
}
