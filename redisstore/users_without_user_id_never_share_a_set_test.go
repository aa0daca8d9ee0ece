package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// userSet is a token set of account acct whose tokens name no user id;
// claims are the extra claims of its JWTs (a subject, an email, or none).
func userSet(acct, claims string, n int) *credentials.TokenSet {
	exp := time.Now().Add(time.Hour).Unix()
	jwt := func(kind string) string {
		payload := fmt.Sprintf(`{"exp":%d,"iat":%d,"kind":%q,"n":%d%s,"https://api.openai.com/auth":{"chatgpt_account_id":%q}}`,
			exp, testEpoch+int64(n), kind, n, claims, acct)
		return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig-" + rand.Text()
	}
	return &credentials.TokenSet{IDToken: jwt("id"), AccessToken: jwt("access"), RefreshToken: "rt-" + rand.Text(), AccountID: acct}
}

// Two users of one workspace whose tokens carry no user id each keep their
// own fleet token set: by their tokens' subject or email when they carry
// one, else by their seed. A replica of user B never loads user A's set.
func TestUsersWithoutUserIDNeverShareASet(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"subject", `,"sub":"auth0|alice"`, `,"sub":"auth0|bob"`},
		{"email", `,"email":"alice@example.com"`, `,"email":"bob@example.com"`},
		{"no claims", ``, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := redisAddr(t)
			stores := fleetOf(t, 3, addr, Options{})
			login := credentials.Login{AccountID: "acct-shared-workspace"} // no user id in the tokens
			alice, bob := userSet(login.AccountID, tc.a, 1), userSet(login.AccountID, tc.b, 2)
			ctx := context.Background()
			coords := stores[0].Coordinators(CoordinatorOptions{})
			ca, err := coords(login, alice)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ca.Load(ctx); err != nil || !sameSet(got, alice) {
				t.Fatalf("alice's replica: %v", err)
			}
			cb, err := stores[1].Coordinators(CoordinatorOptions{})(login, bob)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := cb.Load(ctx); err != nil || !sameSet(got, bob) {
				t.Fatalf("bob's replica loads another user's set (alice's: %v): %v", sameSet(got, alice), err)
			}
			// Alice's second replica, from the same auth.json, shares hers.
			ca2, err := stores[2].Coordinators(CoordinatorOptions{})(login, alice)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ca2.Load(ctx); err != nil || !sameSet(got, alice) {
				t.Fatalf("alice's second replica: %v", err)
			}
		})
	}
}

// A set stored for a login is checked against what the login's seed says
// about its user: a set of another subject is refused, never returned.
func TestCoordinatorRefusesAnotherSubjectsSet(t *testing.T) {
	addr := redisAddr(t)
	stores := fleetOf(t, 2, addr, Options{})
	login := credentials.Login{AccountID: "acct-subject-check"}
	alice := userSet(login.AccountID, `,"sub":"auth0|alice"`, 1)
	ctx := context.Background()
	c := coordinator(t, stores[0], login, CoordinatorOptions{Initial: alice})
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	bob := userSet(login.AccountID, `,"sub":"auth0|bob"`, 2)
	release, err := c.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := c.CompareAndSwap(ctx, alice, bob); !errors.Is(err, ErrLoginMismatch) {
		t.Fatalf("swap to another subject's set: %v, want ErrLoginMismatch", err)
	}
}
