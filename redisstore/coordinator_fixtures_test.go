package redisstore

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// fleetOf returns n Stores (replicas) sharing a sealing key and a login
// prefix on addr.
func fleetOf(tb testing.TB, n int, addr string, opts Options) []*Store {
	tb.Helper()
	sealer := newSealer(tb, newKey(tb))
	if opts.LoginPrefix == "" {
		opts.LoginPrefix = uniquePrefix(tb)
	}
	out := make([]*Store, n)
	for i := range out {
		out[i] = newSealedStore(tb, addr, sealer, opts)
	}
	return out
}

func coordinator(tb testing.TB, s *Store, login credentials.Login, opts CoordinatorOptions) *Coordinator {
	tb.Helper()
	c, err := s.RefreshCoordinator(login, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func sameSet(a, b *credentials.TokenSet) bool {
	return a != nil && b != nil && a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.IDToken == b.IDToken && a.AccountID == b.AccountID && a.LastRefresh.Equal(b.LastRefresh)
}

func total(a, b, c int) int { return a * b * c }

func mustCoordinator(tb testing.TB, s *Store, login credentials.Login) *Coordinator {
	tb.Helper()
	c, err := s.RefreshCoordinator(login, CoordinatorOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// testTokenSet is generation n of a login's tokens: a JWT-shaped access
// token expiring after life, and opaque refresh and id tokens, all unique.
func testTokenSet(name string, n int, life time.Duration) *credentials.TokenSet {
	exp := time.Now().Add(life).Unix()
	// iat orders the generations of a login (n), as the token endpoint's
	// issue times do.
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%d,"iat":%d,"n":%d}`, exp, testEpoch+int64(n), n))
	r := make([]byte, 8)
	rand.Read(r)
	return &credentials.TokenSet{
		AccessToken:  "eyJhbGciOiJub25lIn0." + payload + fmt.Sprintf(".sig%x", r),
		RefreshToken: fmt.Sprintf("rt-%s-%d-%x", name, n, r),
		IDToken:      fmt.Sprintf("idt-%s-%d-%x", name, n, r),
		AccountID:    "acct-" + name,
		LastRefresh:  time.Now().UTC().Truncate(time.Second),
	}
}

// testEpoch is the issue time (seconds) of generation 0 of every
// testTokenSet login, an hour ago.
var testEpoch = time.Now().Add(-time.Hour).Unix()
