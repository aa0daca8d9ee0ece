package login

import (
	"errors"
	"testing"
)

// Either variable selects workload identity; a partial setup is an error.
func TestWorkloadIdentityConfiguration(t *testing.T) {
	_, err := WorkloadIdentity(Options{CodexHome: "/x", Getenv: env()})
	if !errors.Is(err, ErrNoWorkloadIdentity) {
		t.Errorf("unset: %v", err)
	}
	for _, e := range [][]string{
		{"OPENAI_FEDERATION_RULE_ID", "r"},
		{"OPENAI_IDENTITY_TOKEN_FILE", "/abs"},
		{"OPENAI_FEDERATION_RULE_ID", "r", "OPENAI_IDENTITY_TOKEN_FILE", "relative"},
		{"OPENAI_FEDERATION_RULE_ID", "r", "OPENAI_IDENTITY_TOKEN_FILE", "/abs", "CODEX_WIF_TOKEN_URL_OVERRIDE", "https://example.com/oauth/token"},
	} {
		if _, err := WorkloadIdentity(Options{CodexHome: "/x", Getenv: env(e...)}); err == nil || errors.Is(err, ErrNoWorkloadIdentity) {
			t.Errorf("%v: err = %v", e, err)
		}
	}
}
