package identitytest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentauth/agentauth/internal/identity"
)

const jwtTestKey = "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="

func jwtTestRecord() identity.Record {
	return identity.Record{
		AgentRuntimeID: "agent-123", AgentPrivateKey: jwtTestKey, AccountID: "acct",
		ChatGPTUserID: "user", PlanType: "plus",
	}
}

// parsed returns the kid header and registered claims of tok, unverified.
func parsed(t *testing.T, tok string) (kid string, claims jwt.Claims, all map[string]any) {
	t.Helper()
	p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.UnsafeClaimsWithoutVerification(&claims, &all); err != nil {
		t.Fatal(err)
	}
	return p.Headers[0].KeyID, claims, all
}

func TestJWTIssuer(t *testing.T) {
	iss, err := NewJWTIssuer()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := identity.ParseJWKS(iss.JWKSJSON())
	if err != nil {
		t.Fatal(err)
	}
	if got := keys.KeyIDs(); len(got) != 1 || got[0] != iss.KID() || iss.KID() == "" {
		t.Fatalf("JWKS kids = %v, issuer kid %q", got, iss.KID())
	}

	t.Run("defaults verify", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		tok, err := iss.Mint(jwtTestRecord(), MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := identity.VerifyAgentIdentityJWT(tok, keys, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if rec.AgentRuntimeID != "agent-123" || rec.AgentPrivateKey != jwtTestKey || rec.Email != "" {
			t.Errorf("record = %v", rec)
		}
		kid, c, all := parsed(t, tok)
		if kid != iss.KID() || c.Issuer != identity.JWTIssuer || len(c.Audience) != 1 || c.Audience[0] != identity.JWTAudience {
			t.Errorf("kid %q iss %q aud %v", kid, c.Issuer, c.Audience)
		}
		if iat := c.IssuedAt.Time(); iat.Before(before) || iat.After(time.Now().Add(time.Second)) {
			t.Errorf("iat = %v, want now", iat)
		}
		if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != time.Hour {
			t.Errorf("exp - iat = %v, want 1h", got)
		}
		if _, ok := all["email"]; ok {
			t.Error("empty email was minted as a claim")
		}
		if all["chatgpt_account_is_fedramp"] != false {
			t.Errorf("chatgpt_account_is_fedramp = %v, want false", all["chatgpt_account_is_fedramp"])
		}
	})

	t.Run("options", func(t *testing.T) {
		iat := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		tok, err := iss.Mint(jwtTestRecord(), MintOptions{
			Issuer: "iss-x", Audience: "aud-x", IssuedAt: iat, ExpiresAt: iat.Add(time.Minute), KID: "kid-x",
		})
		if err != nil {
			t.Fatal(err)
		}
		kid, c, _ := parsed(t, tok)
		if kid != "kid-x" || c.Issuer != "iss-x" || c.Audience[0] != "aud-x" ||
			!c.IssuedAt.Time().Equal(iat) || !c.Expiry.Time().Equal(iat.Add(time.Minute)) {
			t.Errorf("kid %q claims %+v", kid, c)
		}
		tok, err = iss.Mint(jwtTestRecord(), MintOptions{OmitKID: true, OmitExpiry: true})
		if err != nil {
			t.Fatal(err)
		}
		kid, c, _ = parsed(t, tok)
		if kid != "" || c.Expiry != nil {
			t.Errorf("OmitKID/OmitExpiry: kid %q exp %v", kid, c.Expiry)
		}
		if _, err := identity.VerifyAgentIdentityJWT(tok, keys, time.Time{}); !errors.Is(err, identity.ErrInvalidJWT) {
			t.Errorf("token without kid and exp verified: %v", err)
		}
	})

	t.Run("JWKS is public", func(t *testing.T) {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(iss.JWKSJSON(), &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("JWKS = %s, %v", iss.JWKSJSON(), err)
		}
		k := set.Keys[0]
		if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["kid"] != iss.KID() {
			t.Errorf("JWKS key = %v", k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS publishes private member %q", private)
			}
		}
		if iss.PublicKey().N.BitLen() != 2048 {
			t.Errorf("key is %d bits, want 2048", iss.PublicKey().N.BitLen())
		}
	})

	t.Run("issuers are distinct", func(t *testing.T) {
		other, err := NewJWTIssuer()
		if err != nil {
			t.Fatal(err)
		}
		if other.KID() == iss.KID() || other.PublicKey().Equal(iss.PublicKey()) {
			t.Fatal("two issuers share a kid or key")
		}
		tok, err := other.Mint(jwtTestRecord(), MintOptions{KID: iss.KID()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = identity.VerifyAgentIdentityJWT(tok, keys, time.Time{})
		if err == nil || !strings.Contains(err.Error(), "signature") {
			t.Errorf("token from another issuer under a trusted kid: %v", err)
		}
	})
}
