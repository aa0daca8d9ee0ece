package federation

import (
	"testing"

	"github.com/agentauth/agentauth/internal/oauthwire"
)

// The exchange answer parser: no panic, and what it accepts is a usable
// token.
func FuzzParseWorkloadToken(f *testing.F) {
	f.Add([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":600,"chatgpt_account_id":"a","user_id":"u"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseWorkloadToken(b)
		if err == nil && (w.Lifetime <= 0 || w.Lifetime > maxWIFLifetime || w.AccountID == "" || !oauthwire.PrintableToken(w.AccessToken)) {
			t.Fatalf("accepted %v", w.Lifetime)
		}
	})
}
