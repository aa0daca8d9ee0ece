package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// A sealing key is rotated across a rolling deploy in two phases: the new
// key is listed second on every replica, then promoted to first. At every
// step of the deploy each replica opens the fleet's token set and agent
// identity, whichever replica rotated it last. Putting the new key first
// in one step breaks the replicas still on the old list.
func TestSealingKeyRotationInTwoPhases(t *testing.T) {
	addr := redisAddr(t)
	oldKey, newKey := newKey(t), newKey(t)
	prefix := uniquePrefix(t)
	login := credentials.Login{AccountID: "acct-rotate", UserID: "user-rotate"}
	ctx := context.Background()
	gen := 0
	replica := func(keys ...[]byte) (*Store, *Coordinator) {
		s := newSealedStore(t, addr, newSealer(t, keys...), Options{LoginPrefix: prefix})
		return s, coordinator(t, s, login, CoordinatorOptions{})
	}
	// rotate stores the next generation through c.
	rotate := func(c *Coordinator) {
		t.Helper()
		release, err := c.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		cur, err := c.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gen++
		if err := c.CompareAndSwap(ctx, cur, testTokenSet("rotate", gen, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// everyoneReads checks that every replica opens the set and identity.
	everyoneReads := func(step string, stores []*Store, coords []*Coordinator) {
		t.Helper()
		for i, c := range coords {
			if _, err := c.Load(ctx); err != nil {
				t.Fatalf("%s: replica %d cannot open the token set: %v", step, i, err)
			}
			if rec, err := stores[i].LoadAgentIdentity(ctx, login); err != nil || rec == nil {
				t.Fatalf("%s: replica %d cannot open the agent identity: %v, %v", step, i, rec, err)
			}
		}
	}

	sa, a := replica(oldKey)
	sb, b := replica(oldKey)
	rec := testRecord(t, login.AccountID, login.UserID)
	if err := sa.SaveAgentIdentity(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	rotate(a)
	everyoneReads("before", []*Store{sa, sb}, []*Coordinator{a, b})

	// Phase 1, rolling: b restarts with the new key second and rotates;
	// it still seals with the old key, so a (not restarted yet) reads it.
	sb, b = replica(oldKey, newKey)
	rotate(b)
	everyoneReads("phase 1, half deployed", []*Store{sa, sb}, []*Coordinator{a, b})
	sa, a = replica(oldKey, newKey)
	rotate(a)
	everyoneReads("phase 1 deployed", []*Store{sa, sb}, []*Coordinator{a, b})

	// Phase 2, rolling: promoted on b first, which now seals with the new
	// key; a, still on phase 1's list, opens it.
	sb, b = replica(newKey, oldKey)
	rotate(b)
	everyoneReads("phase 2, half deployed", []*Store{sa, sb}, []*Coordinator{a, b})
	sa, a = replica(newKey, oldKey)
	rotate(a)
	everyoneReads("phase 2 deployed", []*Store{sa, sb}, []*Coordinator{a, b})

	// The one-step rotation this procedure replaces: with the new key put
	// first on one replica while another still lists only the old key,
	// the old replica cannot open what the new one rotated.
	prefix = uniquePrefix(t) + "one-step:"
	_, old := replica(oldKey)
	rotate(old)
	_, hasty := replica(newKey, oldKey)
	rotate(hasty)
	if _, err := old.Load(ctx); !errors.Is(err, ErrUnknownSealingKey) {
		t.Fatalf("an old replica after a one-step rotation: %v, want ErrUnknownSealingKey", err)
	}
}
