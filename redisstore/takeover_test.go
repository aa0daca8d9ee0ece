package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

const (
	envHolder     = "AGENTAUTH_REDISSTORE_REFRESH_HOLDER" // "lock" or "swap": TestChildRefreshHolder runs
	holderAccount = "acct-takeover"
)

// TestChildRefreshHolder is the replica of TestCoordinatorHolderKilled
// that dies mid-refresh: it takes the login's refresh lock and prints
// "locked"; with "swap" it also rotates the set (as a refresher does after
// its token request) and prints "swapped". Then it hangs, holding the
// lock, until it is killed.
func TestChildRefreshHolder(t *testing.T) {
	mode := os.Getenv(envHolder)
	if mode == "" {
		t.Skip("helper process of TestCoordinatorHolderKilled")
	}
	lockTimeout, err := time.ParseDuration(os.Getenv(envLockTimeout))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, os.Getenv(envRedis), Options{LoginPrefix: os.Getenv(envLoginPrefix), OpTimeout: lockTimeout / 3})
	c := coordinator(t, s, credentials.Login{AccountID: holderAccount}, CoordinatorOptions{LockTimeout: lockTimeout})
	ctx := context.Background()
	if _, err := c.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	if mode == "swap" {
		cur, err := c.Load(ctx)
		if err != nil || cur == nil {
			t.Fatalf("load: %v, %v", cur, err)
		}
		next := testTokenSet("takeover-holder", 1, time.Hour)
		next.AccountID = holderAccount
		if err := c.CompareAndSwap(ctx, cur, next); err != nil {
			t.Fatal(err)
		}
		fmt.Println("swapped")
	}
	select {} // killed here, lock held
}

// Acceptance 3 at the coordinator: a replica process holding the refresh
// lock is SIGKILLed mid-refresh (before or after its swap); another
// replica waiting for the lock takes over once the lock times out, finds
// the dead holder's rotation if it made one, rotates from there, and a
// replica that read the set before all this cannot overwrite it.
func TestCoordinatorHolderKilled(t *testing.T) {
	for _, mode := range []string{"lock", "swap"} {
		t.Run(mode, func(t *testing.T) {
			const lockTimeout = 1500 * time.Millisecond
			addr := redisAddr(t)
			key := newKey(t)
			loginPrefix := uniquePrefix(t)
			opts := Options{LoginPrefix: loginPrefix, OpTimeout: lockTimeout / 3, PollInterval: 10 * time.Millisecond, MaxPollInterval: 50 * time.Millisecond}
			login := credentials.Login{AccountID: holderAccount}
			s0 := testTokenSet("takeover", 0, time.Hour)
			s0.AccountID = holderAccount
			stale := coordinator(t, newSealedStore(t, addr, newSealer(t, key), opts), login, CoordinatorOptions{Initial: s0, LockTimeout: lockTimeout})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if got, err := stale.Load(ctx); err != nil || !sameSet(got, s0) {
				t.Fatalf("seed: %v", err)
			}

			holder := startChildRun(t, "TestChildRefreshHolder", envHolder+"="+mode, envRedis+"="+addr,
				envLoginPrefix+"="+loginPrefix, envLockTimeout+"="+lockTimeout.String(),
				SealingKeyEnv+"="+base64.StdEncoding.EncodeToString(key))
			holder.expect(t, "locked", 30*time.Second)
			locked := time.Now()
			if mode == "swap" {
				holder.expect(t, "swapped", 30*time.Second)
			}

			b := coordinator(t, newSealedStore(t, addr, newSealer(t, key), opts), login, CoordinatorOptions{LockTimeout: lockTimeout})
			type result struct {
				release func()
				err     error
				at      time.Time
			}
			got := make(chan result, 1)
			go func() {
				release, err := b.Lock(ctx)
				got <- result{release, err, time.Now()}
			}()
			holder.cmd.Process.Kill() // SIGKILL: no release
			holder.wait()
			r := <-got
			if r.err != nil {
				t.Fatal(r.err)
			}
			waited := r.at.Sub(locked)
			if waited < lockTimeout-200*time.Millisecond || waited > lockTimeout+5*time.Second {
				t.Fatalf("took over %v after the holder locked; lock timeout %v", waited, lockTimeout)
			}
			cur, err := b.Load(ctx)
			if err != nil || cur == nil {
				t.Fatalf("load after takeover: %v, %v", cur, err)
			}
			switch mode {
			case "lock":
				if !sameSet(cur, s0) {
					t.Fatal("the fleet set changed though the holder never swapped")
				}
			case "swap":
				if !strings.HasPrefix(cur.RefreshToken, "rt-takeover-holder-") {
					t.Fatal("the dead holder's rotation was lost")
				}
			}
			s2 := testTokenSet("takeover-next", 2, time.Hour)
			s2.AccountID = holderAccount
			if err := b.CompareAndSwap(ctx, cur, s2); err != nil {
				t.Fatal(err)
			}
			r.release()
			late := testTokenSet("takeover-stale", 9, time.Hour)
			late.AccountID = holderAccount
			if err := stale.CompareAndSwap(ctx, s0, late); !errors.Is(err, credentials.ErrTokenSetChanged) {
				t.Fatalf("stale replica's swap: %v, want ErrTokenSetChanged", err)
			}
			if final, err := stale.Load(ctx); err != nil || !sameSet(final, s2) {
				t.Fatalf("final set is not the takeover's rotation: %v", err)
			}
			if st := b.Stats(); st.Waits != 1 || st.Locks != 1 {
				t.Fatalf("taking over replica: %+v", st)
			}
			t.Logf("%s: lock of the killed holder taken over %v after it was taken (lock timeout %v)", mode, waited.Round(time.Millisecond), lockTimeout)
		})
	}
}
