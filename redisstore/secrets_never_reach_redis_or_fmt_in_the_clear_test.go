package redisstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// Acceptance 5 (first half): after a login's identity is stored and its
// tokens rotated a few times, SCAN of the whole database with GET or
// HGETALL of every key finds no token, no private key, and no key name
// that reveals the account or user.
func TestRedisHoldsNoSecretInTheClear(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	s := newSealedStore(t, addr, newSealer(t, newKey(t)), Options{})
	rec := testRecord(t, "acct-scan-"+randHex(t), "user-scan-"+randHex(t))
	login := credentials.Login{AccountID: rec.AccountID, UserID: rec.ChatGPTUserID}
	if err := s.SaveAgentIdentity(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	c := coordinator(t, s, login, CoordinatorOptions{})
	secrets := []string{rec.AgentPrivateKey.Reveal()}
	var prev *credentials.TokenSet
	for n := range 4 {
		next := testTokenSet("scan", n, time.Hour)
		next.AccountID = rec.AccountID
		release, err := c.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = c.CompareAndSwap(ctx, prev, next)
		release()
		if err != nil {
			t.Fatal(err)
		}
		prev = next
		secrets = append(secrets, next.AccessToken, next.RefreshToken, next.IDToken,
			strings.Split(next.AccessToken, ".")[1]) // the JWT payload alone
	}
	scanAll(t, addr, secrets, []string{rec.AccountID, rec.ChatGPTUserID, rec.AgentRuntimeID})
}

// Printing a Store, a Sealer or a Coordinator with any verb reveals no key
// and no token.
func TestPrintingRevealsNoSecret(t *testing.T) {
	addr := redisAddr(t)
	k := newKey(t)
	sealer := newSealer(t, k)
	s := newSealedStore(t, addr, sealer, Options{})
	ts := testTokenSet("print", 1, time.Hour)
	c := coordinator(t, s, credentials.Login{AccountID: ts.AccountID}, CoordinatorOptions{Initial: ts})
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	secrets := []string{string(k), base64.StdEncoding.EncodeToString(k), fmt.Sprintf("%x", k), ts.AccessToken, ts.RefreshToken, ts.IDToken}
	for _, v := range []any{s, sealer, c} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, v)
			for _, sec := range secrets {
				if strings.Contains(out, sec) {
					t.Fatalf("%s of %T reveals a secret: %s", verb, v, out)
				}
			}
		}
	}
}
