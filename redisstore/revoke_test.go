package redisstore

import (
	"context"
	"testing"
)

// A 401 on a revoked task forgets the fleet mapping once: the first
// replica rejected re-registers and publishes the replacement, and the
// second one, rejected with the same old task, adopts that replacement
// instead of erasing it or registering again.
func TestRevokedTaskReplacedFleetWide(t *testing.T) {
	addr := redisAddr(t)
	srv := newServer(t)
	rec := newIdentity(t, srv)
	prefix := uniquePrefix(t)
	sa, sb := newStore(t, addr, Options{Prefix: prefix}), newStore(t, addr, Options{Prefix: prefix})
	a, b := newReplica(t, srv.URL(), rec, sa, nil), newReplica(t, srv.URL(), rec, sb, nil)
	ctx := context.Background()
	const thread = "thread-revoked"

	first, err := a.do(ctx, srv.URL(), thread)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.do(ctx, srv.URL(), thread); err != nil || got != first {
		t.Fatalf("b: %q, %v; want a's task", got, err)
	}
	if !srv.RevokeTask(first) {
		t.Fatal("task not found to revoke")
	}
	second, err := a.do(ctx, srv.URL(), thread) // 401, Forget, re-register, replay
	if err != nil || second == first {
		t.Fatalf("a after revocation: %q, %v", second, err)
	}
	if got, err := b.do(ctx, srv.URL(), thread); err != nil || got != second {
		t.Fatalf("b after revocation: %q, %v; want a's replacement %q", got, err, second)
	}
	if n := srv.Stats().RegistrationsByExternalRef[thread]; n != 2 {
		t.Fatalf("%d registrations, want 2 (the original and one replacement)", n)
	}
	if sa.Stats().Forgets != 1 || sb.Stats().Forgets != 0 || sb.Stats().Hits != 2 {
		t.Fatalf("stores: a %+v, b %+v", sa.Stats(), sb.Stats())
	}
	if ra, rb := a.rt.Stats().Replays, b.rt.Stats().Replays; ra != 1 || rb != 1 {
		t.Fatalf("replays a=%d b=%d, want 1 each", ra, rb)
	}
}
