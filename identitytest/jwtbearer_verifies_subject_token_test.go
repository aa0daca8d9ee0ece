package identitytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The JWT-bearer grant checks the subject token's signature, issuer,
// audience and expiry against the rule, and answers Codex's fields.
func TestJWTBearerVerifiesSubjectToken(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	c := newClient(t)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	if err := s.AddFederationRule(FederationRule{ID: "fdrl_1", Issuer: "https://iss.test", Audience: "openai", Key: pub,
		Login: Login{AccountID: "acct-f", UserID: "user-f"}}); err != nil {
		t.Fatal(err)
	}
	mint := func(k ed25519.PrivateKey, iss, aud string, exp time.Time) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: k}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: iss, Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(exp)}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	exchange := func(assertion, rule string) response {
		f := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}, "federation_rule_id": {rule}}
		return do(t, c, "POST", s.URL()+"/oauth/token", formHdr, []byte(f.Encode()))
	}
	exp := clock.Now().Add(time.Hour)
	for name, tc := range map[string]struct{ assertion, rule, reason string }{
		"signature": {mint(otherKey, "https://iss.test", "openai", exp), "fdrl_1", "invalid_assertion_signature"},
		"issuer":    {mint(key, "https://other.test", "openai", exp), "fdrl_1", "invalid_assertion_issuer"},
		"audience":  {mint(key, "https://iss.test", "other", exp), "fdrl_1", "invalid_assertion_audience"},
		"expiry":    {mint(key, "https://iss.test", "openai", clock.Now().Add(-time.Second)), "fdrl_1", "invalid_assertion_expiry"},
		"rule":      {mint(key, "https://iss.test", "openai", exp), "fdrl_unknown", "invalid_federation_rule"},
		"not a jwt": {"not-a-jwt", "fdrl_1", "invalid_assertion"},
	} {
		if r := exchange(tc.assertion, tc.rule); r.status != 400 || errorReason(t, r) != tc.reason {
			t.Errorf("%s: %d %s, want 400 %s", name, r.status, r.body, tc.reason)
		}
	}
	r := exchange(mint(key, "https://iss.test", "openai", exp), "fdrl_1")
	var v map[string]any
	if r.status != 200 || json.Unmarshal(r.body, &v) != nil {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	if v["token_type"] != "Bearer" || v["chatgpt_account_id"] != "acct-f" || v["user_id"] != "user-f" || v["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || v["expires_in"] != float64(3600) {
		t.Errorf("answer = %v", v)
	}
	if s.FederationExchanges() != 1 {
		t.Errorf("FederationExchanges = %d", s.FederationExchanges())
	}
}
