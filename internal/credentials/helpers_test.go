package credentials

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/identity"
)

// Values that appear in the fixtures under testdata/.
const (
	fixtureAPIKey       = "sk-test-SECRET-apikey-0001"
	fixtureAccessToken  = "at-SECRET-access-0001"
	fixtureRefreshToken = "rt-SECRET-refresh-0001"
	// seed 0x07 × 32, PKCS#8 v2 (the test-vector key)
	fixturePrivateKey = "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
)

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fixtureSecrets returns every secret string used by the fixtures.
func fixtureSecrets(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "fake_secrets.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return append(out, "SECRET")
}

// assertNoSecret fails when s contains any fixture secret (or the marker
// "SECRET" that every fake secret carries).
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range fixtureSecrets(t) {
		if strings.Contains(s, sec) {
			t.Errorf("%s leaks a secret (%.12s...): %s", what, sec, s)
		}
	}
}

// homeWith returns a fresh CODEX_HOME whose auth.json is the named
// fixture (or no auth.json when fixture is "").
func homeWith(t *testing.T, fixture string) string {
	t.Helper()
	home := t.TempDir()
	if fixture != "" {
		data, err := os.ReadFile(filepath.Join("testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, AuthFileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// decodeUnverified is the test's DecodeAgentIdentityJWT: it reads the
// claims without checking the signature, as identity's explicit unverified
// mode does.
func decodeUnverified(token string) (*identity.Record, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("invalid agent identity JWT format")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("invalid agent identity JWT payload")
	}
	var rec identity.Record
	if err := json.Unmarshal(payload, &rec); err != nil {
		return nil, errors.New("invalid agent identity JWT claims")
	}
	return &rec, nil
}

func testRecord(accountID string) *identity.Record {
	return &identity.Record{
		AgentRuntimeID:  "agent-123",
		AgentPrivateKey: fixturePrivateKey,
		AccountID:       accountID,
		ChatGPTUserID:   "user-1",
		PlanType:        "plus",
	}
}

// jwtFor builds an unsigned-looking JWT whose payload is rec, for the
// unverified test decoder.
func jwtFor(t *testing.T, rec *identity.Record) string {
	t.Helper()
	// identity.Record redacts its key in MarshalJSON, so spell the claims out.
	b, err := json.Marshal(map[string]any{
		"agent_runtime_id": rec.AgentRuntimeID, "agent_private_key": rec.AgentPrivateKey.Reveal(),
		"account_id": rec.AccountID, "chatgpt_user_id": rec.ChatGPTUserID, "email": rec.Email,
		"plan_type": rec.PlanType, "chatgpt_account_is_fedramp": rec.IsFedRAMP,
	})
	if err != nil {
		t.Fatal(err)
	}
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2lnLVNFQ1JFVA"
}
