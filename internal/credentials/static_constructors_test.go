package credentials

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

func TestAPIKeyBuildsAnAPIKeyCredential(t *testing.T) {
	c := APIKey(fixtureAPIKey)
	if c.Kind != KindAPIKey || c.APIKey != fixtureAPIKey || c.PersonalAccessToken || c.ChatGPT != nil || c.AgentIdentity != nil {
		t.Fatalf("APIKey = %+v (key set: %v)", c, c.APIKey == fixtureAPIKey)
	}
	if c.Source != "credentials.APIKey" {
		t.Errorf("Source = %q", c.Source)
	}
	if r := c.Routing(); r.AccountID != "" || r.FedRAMP {
		t.Errorf("an API key has routing %+v", r)
	}
	assertNoSecret(t, "fmt %+v", fmt.Sprintf("%+v %v %s %#v", c, c, c, c))
}

func TestChatGPTTokenBuildsAStaticLogin(t *testing.T) {
	c := ChatGPTToken(fixtureAccessToken, "acct-static", true)
	if c.Kind != KindChatGPT || c.ChatGPT == nil || c.ChatGPT.AccessToken != fixtureAccessToken {
		t.Fatalf("ChatGPTToken = %+v", c)
	}
	if c.ChatGPT.RefreshToken != "" || c.ChatGPT.ExternallyManaged || c.Source != "credentials.ChatGPTToken" {
		t.Errorf("ChatGPTToken login = %+v, Source %q", c.ChatGPT, c.Source)
	}
	if r := c.Routing(); r.AccountID != "acct-static" || !r.FedRAMP {
		t.Errorf("Routing = %+v, want acct-static with FedRAMP", r)
	}
	if r := ChatGPTToken(fixtureAccessToken, "acct-commercial", false).Routing(); r.FedRAMP {
		t.Errorf("fedRAMP false gave %+v", r)
	}
	assertNoSecret(t, "fmt", fmt.Sprintf("%+v %v %s %#v", c, c, c, c))
}

// A static token names its user from its own claims, so a fleet's identity
// store can share the identity of that login; a token of another account
// lends it no user.
func TestChatGPTTokenTakesTheUserFromTheAccessToken(t *testing.T) {
	tok := unsignedJWT(t, map[string]any{"https://api.openai.com/auth": map[string]any{
		"chatgpt_account_id": "acct-claims", "chatgpt_user_id": "user-claims"}})
	if got := ChatGPTToken(tok, "acct-claims", false).ChatGPT.UserID; got != "user-claims" {
		t.Errorf("UserID = %q, want user-claims", got)
	}
	if got := ChatGPTToken(tok, "acct-other", false).ChatGPT.UserID; got != "" {
		t.Errorf("a token of another account gave UserID %q", got)
	}
	if got := ChatGPTToken("opaque-token", "acct-claims", false).ChatGPT.UserID; got != "" {
		t.Errorf("an opaque token gave UserID %q", got)
	}
}

// unsignedJWT builds a JWT with the given payload and a dummy signature.
func unsignedJWT(t *testing.T, payload map[string]any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + ".sig"
}

func TestAgentIdentityRecordReadsKeygenAndCodexRecords(t *testing.T) {
	keygen := `{"agent_runtime_id":"rt-keygen","agent_private_key":"` + fixturePrivateKey + `","public_key_ssh":"ssh-ed25519 AAAA"}`
	c, err := AgentIdentityRecord([]byte(keygen))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindAgentIdentity || c.AgentIdentity.AgentRuntimeID != "rt-keygen" || c.AgentIdentity.AgentPrivateKey.Reveal() != fixturePrivateKey {
		t.Fatalf("AgentIdentityRecord = %+v", c)
	}
	if c.AgentIdentityJWT != "" || c.Source != "credentials.AgentIdentityRecord" {
		t.Errorf("JWT set or Source %q", c.Source)
	}

	codex := `{"agent_runtime_id":"rt-codex","agent_private_key":"` + fixturePrivateKey + `","account_id":"acct-rec","chatgpt_user_id":"user-1","email":"","plan_type":"plus","chatgpt_account_is_fedramp":true,"task_id":"task-9"}`
	c, err = AgentIdentityRecord([]byte(codex))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Routing(); r.AccountID != "acct-rec" || !r.FedRAMP || c.AgentIdentity.ChatGPTUserID != "user-1" {
		t.Errorf("routing %+v, record %+v", r, c.AgentIdentity)
	}
	assertNoSecret(t, "fmt", fmt.Sprintf("%+v %v", c, c))
}

func TestAgentIdentityRecordRejectsBadRecordsWithoutTheKey(t *testing.T) {
	cases := []struct {
		name, json, field string
		is                error
	}{
		{"not json", `{"agent_private_key":"` + fixturePrivateKey + `SECRET`, "agent identity record", nil},
		{"array", `["` + fixturePrivateKey + `"]`, "agent identity record", nil},
		{"wrong type", `{"agent_runtime_id":7,"agent_private_key":"` + fixturePrivateKey + `"}`, "agent identity record.agent_runtime_id", nil},
		{"no runtime", `{"agent_private_key":"` + fixturePrivateKey + `"}`, "agent identity record", identity.ErrInvalidKey},
		{"no key", `{"agent_runtime_id":"rt-1"}`, "agent identity record", identity.ErrInvalidKey},
		{"bad key", `{"agent_runtime_id":"rt-1","agent_private_key":"SECRET-not-a-key"}`, "agent identity record", identity.ErrInvalidKey},
		{"bad account", `{"agent_runtime_id":"rt-1","agent_private_key":"` + fixturePrivateKey + `","account_id":"a\nb"}`, "agent identity record", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := AgentIdentityRecord([]byte(tc.json))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var le *LoadError
			if !errors.As(err, &le) || le.Field != tc.field {
				t.Fatalf("err = %v (%T), want a *LoadError on %q", err, err, tc.field)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.is)
			}
			assertNoSecret(t, "error", err.Error())
			if strings.Contains(err.Error(), fixturePrivateKey[:20]) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

func TestAgentIdentityJWTVerifiesAgainstTheKeys(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec, token, err := srv.NewAgentIdentity("", identitytest.Login{AccountID: "acct-jwt", FedRAMP: true})
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := srv.Issuer()
	keys, err := identity.ParseJWKS(iss.JWKSJSON())
	if err != nil {
		t.Fatal(err)
	}

	c, err := AgentIdentityJWT(token, keys)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindAgentIdentity || c.AgentIdentity.AgentRuntimeID != rec.AgentRuntimeID || c.AgentIdentityJWT != token || c.Source != "credentials.AgentIdentityJWT" {
		t.Fatalf("AgentIdentityJWT = %+v", c)
	}
	if r := c.Routing(); r.AccountID != "acct-jwt" || !r.FedRAMP {
		t.Errorf("Routing = %+v", r)
	}
	if s := fmt.Sprintf("%+v %v", c, c); strings.Contains(s, token) || strings.Contains(s, rec.AgentPrivateKey.Reveal()) {
		t.Errorf("fmt leaks the JWT or key: %s", s)
	}

	// An expired token, a token signed by another issuer, and no keys.
	expired, err := iss.Mint(rec, identitytest.MintOptions{IssuedAt: time.Now().Add(-3 * time.Hour), ExpiresAt: time.Now().Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := identitytest.NewJWTIssuer()
	forged, err := other.Mint(rec, identitytest.MintOptions{KID: iss.KID()})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		token string
		keys  *identity.JWKS
	}{
		"expired": {expired, keys},
		"forged":  {forged, keys},
		"no keys": {token, nil},
		"garbage": {"not.a.jwt", keys},
	} {
		c, err := AgentIdentityJWT(tc.token, tc.keys)
		if !errors.Is(err, identity.ErrInvalidJWT) {
			t.Errorf("%s: (%v, %v), want identity.ErrInvalidJWT", name, c, err)
			continue
		}
		if strings.Contains(err.Error(), tc.token) || strings.Contains(err.Error(), rec.AgentPrivateKey.Reveal()) {
			t.Errorf("%s: error leaks the token or key: %v", name, err)
		}
	}
}
