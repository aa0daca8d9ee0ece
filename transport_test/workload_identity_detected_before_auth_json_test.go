package transport_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentauth/agentauth/identitytest"
)

// OPENAI_IDENTITY_TOKEN_FILE and OPENAI_FEDERATION_RULE_ID select workload
// identity ahead of auth.json: requests carry the exchanged token; a
// partial configuration fails instead of falling back.
func TestLoadDetectsWorkloadIdentity(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	if err := srv.AddFederationRule(identitytest.FederationRule{ID: "fdrl_a", Issuer: "https://oidc.test", Audience: "openai", Key: pub,
		Login: identitytest.Login{AccountID: "acct-wif", UserID: "user-wif"}}); err != nil {
		t.Fatal(err)
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, nil)
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "https://oidc.test", Audience: jwt.Audience{"openai"}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	home, _ := chatGPTHome(t, srv) // an auth.json login that must not be used
	e := envVars{"OPENAI_IDENTITY_TOKEN_FILE": file, "OPENAI_FEDERATION_RULE_ID": "fdrl_a", "CODEX_WIF_TOKEN_URL_OVERRIDE": srv.URL() + "/oauth/token"}
	rt := newEnv(t, fromHome(srv, nil, home, e.get)).rt
	got := getEcho(t, rt, srv.URL()+"/v1/models")
	if got.AccountID != "acct-wif" || srv.FederationExchanges() != 1 {
		t.Fatalf("echo account %q, exchanges %d", got.AccountID, srv.FederationExchanges())
	}
	delete(e, "OPENAI_FEDERATION_RULE_ID")
	_, err = tryEnv(t, fromHome(srv, nil, home, e.get))
	if err == nil || !strings.Contains(err.Error(), "OPENAI_FEDERATION_RULE_ID") {
		t.Fatalf("partial configuration: %v", err)
	}
}
