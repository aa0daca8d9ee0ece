package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// A provisioning that fails (agent registration answering 503, a timeout)
// returns without saving an identity. The reservation its LoadAgentIdentity
// took is freed when its context ends, so the next replica gets the
// reservation at once instead of waiting for the lock to expire (35 s).
func TestFailedProvisioningReleasesReservation(t *testing.T) {
	addr := redisAddr(t)
	sealer := newSealer(t, newKey(t))
	opts := Options{LoginPrefix: uniquePrefix(t), PollInterval: 5 * time.Millisecond, LockTimeout: time.Minute}
	a, b := newSealedStore(t, addr, sealer, opts), newSealedStore(t, addr, sealer, opts)
	login := credentials.Login{AccountID: "acct-prov-fail", UserID: "user-prov-fail"}

	actx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if rec, err := a.LoadAgentIdentity(actx, login); err != nil || rec != nil {
		t.Fatalf("first replica: %v, %v; want a reservation", rec, err)
	}
	cancel() // its registration failed: the provisioning returns

	lockKey := a.loginKeysFor(login).identityLock
	c := newClient(t, addr)
	waitUntil(t, 10*time.Second, "the failed provisioning's reservation to be freed", func() bool {
		n, err := c.Exists(context.Background(), lockKey).Result()
		return err == nil && n == 0
	})

	bctx, bcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer bcancel()
	if rec, err := b.LoadAgentIdentity(bctx, login); err != nil || rec != nil {
		t.Fatalf("second replica: %v, %v; want a reservation", rec, err)
	}
	if owner, err := c.Get(context.Background(), lockKey).Result(); err != nil || owner != b.instance {
		t.Fatalf("the second replica provisions without the reservation (lock %v)", err)
	}
	bcancel()
	waitUntil(t, 10*time.Second, "the second reservation to be freed", func() bool {
		n, err := c.Exists(context.Background(), lockKey).Result()
		return err == nil && n == 0
	})
}
