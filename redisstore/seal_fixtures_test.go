package redisstore

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/agentauth/agentauth/internal/identity"
)

func newKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, SealingKeySize)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return k
}

func newSealer(tb testing.TB, keys ...[]byte) *Sealer {
	tb.Helper()
	s, err := NewSealer(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newSealedStore is newStore with a sealing key.
func newSealedStore(tb testing.TB, addr string, sealer *Sealer, opts Options) *Store {
	tb.Helper()
	opts.Sealer = sealer
	if opts.LoginPrefix == "" {
		opts.LoginPrefix = uniquePrefix(tb) + "login:"
	}
	return newStore(tb, addr, opts)
}

// testRecord is a valid identity for account and user with a fresh key.
func testRecord(tb testing.TB, account, user string) identity.Record {
	tb.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return identity.Record{AgentRuntimeID: "runtime-" + account + "-" + randHex(tb), AgentPrivateKey: identity.Secret(k.MarshalPrivateKey()),
		AccountID: account, ChatGPTUserID: user, PlanType: "plus"}
}

func randHex(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
