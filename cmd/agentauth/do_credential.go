// do's credentials: the --record file, and the secret values scrubbed from what do prints.

package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

// loadDoRecord reads --record: an Agent Identity record or a keygen JSON
// (which has no account fields, so no routing headers are sent).
func loadDoRecord(path string, stdin io.Reader) (*identity.Record, error) {
	data, err := readRecord(path, stdin)
	if err != nil {
		return nil, err
	}
	runtimeID, key, err := parseRecord(data)
	if err != nil {
		return nil, err
	}
	var acct struct {
		AccountID     string `json:"account_id"`
		ChatGPTUserID string `json:"chatgpt_user_id"`
		Email         string `json:"email"`
		PlanType      string `json:"plan_type"`
		FedRAMP       bool   `json:"chatgpt_account_is_fedramp"`
	}
	if jsonErr := json.Unmarshal(data, &acct); jsonErr != nil {
		return nil, errors.New("record: account_id, chatgpt_user_id, email, plan_type must be strings and chatgpt_account_is_fedramp a boolean")
	}
	if acct.AccountID != "" {
		if err := validateID("record account_id", acct.AccountID); err != nil {
			return nil, err
		}
	}
	return &identity.Record{
		AgentRuntimeID:  runtimeID,
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       acct.AccountID,
		ChatGPTUserID:   acct.ChatGPTUserID,
		Email:           acct.Email,
		PlanType:        acct.PlanType,
		IsFedRAMP:       acct.FedRAMP,
	}, nil
}

// credentialSecrets lists the secret strings of c, for scrub.
func credentialSecrets(c *credentials.Credentials) []string {
	s := []string{c.APIKey, c.AgentIdentityJWT}
	if c.ChatGPT != nil {
		s = append(s, c.ChatGPT.AccessToken, c.ChatGPT.RefreshToken, c.ChatGPT.IDToken)
	}
	if c.AgentIdentity != nil {
		s = append(s, c.AgentIdentity.AgentPrivateKey.Reveal())
	}
	return s
}

// scrub replaces every occurrence of a known secret in s. The packages
// agentauth uses never put a credential in an error; this guards against
// what they cannot know, such as a server echoing a token in a quoted body.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}
