package transport_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/transport"
)

// A Credential is sealed, so fmt cannot call the redacting methods of what
// it holds; under a verb fmt has no rule for (%t, %d) it would fall back to
// printing the sealed fields raw. Every verb, alone or inside Options, must
// print the description only.
func TestCredentialPrintsNoSecretUnderAnyVerb(t *testing.T) {
	const jwt, key, tok = "eyJhbGciOi.secret-jwt-payload.sig", "sk-secret-api-key", "secret-access-token"
	creds := map[string]transport.Credential{
		"jwt":    transport.AgentIdentityJWT(jwt),
		"apikey": transport.APIKey(key),
		"bearer": transport.BearerToken(tok, "acct-print", false),
	}
	for name, c := range creds {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%t", "%p"} {
			for what, out := range map[string]string{
				"credential": fmt.Sprintf(verb, c),
				"options":    fmt.Sprintf(verb, transport.Options{Credential: c}),
				"pointer":    fmt.Sprintf(verb, &transport.Options{Credential: c}),
			} {
				for _, secret := range []string{jwt, key, tok, "secret"} {
					if strings.Contains(out, secret) {
						t.Errorf("%s %s %s: %q shows a secret", name, what, verb, out)
					}
				}
			}
		}
	}
	if got := fmt.Sprint(transport.APIKey(key)); got != "API key from credentials.APIKey" && !strings.HasPrefix(got, "API key") {
		t.Errorf("fmt.Sprint(APIKey) = %q, want the kind", got)
	}
}
