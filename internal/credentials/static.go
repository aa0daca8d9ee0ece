package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// The constructors of a credential given in code: an API key, a static
// ChatGPT access token, an Agent Identity record or JWT. Their Source names
// the constructor, so diagnostics say the credential came from code. The
// package-level names do not clash with the fields of [Credentials]
// (Credentials.APIKey is the key; credentials.APIKey builds one).

// APIKey returns the credential of an API key, sent as "Bearer <key>" to
// first-party origins. transport.New rejects an empty key or one that
// cannot be sent in a header.
func APIKey(key string) *Credentials {
	return &Credentials{Kind: KindAPIKey, APIKey: key, Source: "credentials.APIKey"}
}

// ChatGPTToken returns the credential of a ChatGPT access token that
// nothing refreshes, with the account it acts for (sent as
// ChatGPT-Account-ID) and whether that account is a FedRAMP account (sent as
// X-OpenAI-Fedramp: true). For a login that must stay alive, load it from
// auth.json or give the transport a token source. The ChatGPT user, which
// binds a provisioned agent identity to its login, is read from the access
// token's own claims (chatgpt_user_id, as Codex reads it) when the token is
// a JWT of that account; otherwise it is unknown, and an identity is then
// shared with no other transport. transport.New rejects a token or account
// id that cannot be sent in a header.
func ChatGPTToken(accessToken, accountID string, fedRAMP bool) *Credentials {
	login := &ChatGPTLogin{AccessToken: accessToken, AccountID: accountID, FedRAMP: fedRAMP}
	if c := accessTokenClaims(accessToken); c.AccountID == "" || c.AccountID == accountID {
		login.UserID = c.UserID
	}
	return &Credentials{Kind: KindChatGPT, ChatGPT: login, Source: "credentials.ChatGPTToken"}
}

// AgentIdentityRecord returns the credential of an Agent Identity record
// given as JSON: the object `agentauth keygen` prints, or the
// agent_identity record of auth.json (agent_runtime_id, agent_private_key,
// and optionally account_id, chatgpt_user_id, email, plan_type,
// chatgpt_account_is_fedramp; other members are ignored). The record must
// name a runtime and hold a usable Ed25519 key. Errors are *[LoadError]
// and never contain the key.
func AgentIdentityRecord(recordJSON []byte) (*Credentials, error) {
	const field = "agent identity record"
	var rec identity.Record
	if err := json.Unmarshal(recordJSON, &rec); err != nil {
		// The decoder's message can quote input, which holds the key.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, &LoadError{Field: field + "." + typeErr.Field, Err: fmt.Errorf("want a %s, got JSON %s", typeErr.Type.Kind(), typeErr.Value)}
		}
		return nil, &LoadError{Field: field, Err: errors.New("not a JSON object")}
	}
	if err := validateRecord(&rec); err != nil {
		return nil, &LoadError{Field: field, Err: err}
	}
	return &Credentials{Kind: KindAgentIdentity, AgentIdentity: &rec, Source: "credentials.AgentIdentityRecord"}, nil
}

// AgentIdentityJWT returns the credential of an Agent Identity JWT, as the
// Codex backend mints it, after verifying it against keys (the backend's
// JWKS: identity.ParseJWKS, or identity.Client.FetchJWKS of
// identity.JWKSURL) at the current time. Errors wrap identity.ErrInvalidJWT
// and never contain the token. transport.New fetches the JWKS and
// verifies a JWT from the Codex home or the environment itself.
func AgentIdentityJWT(token string, keys *identity.JWKS) (*Credentials, error) {
	rec, err := identity.VerifyAgentIdentityJWT(token, keys, time.Now())
	if err != nil {
		return nil, err
	}
	if err := validateRecord(rec); err != nil {
		return nil, err
	}
	return &Credentials{Kind: KindAgentIdentity, AgentIdentity: rec, AgentIdentityJWT: token, Source: "credentials.AgentIdentityJWT"}, nil
}
