package credentials

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/agentauth/agentauth/internal/jwtclaims"
)

// openAIAuthClaim is the id-token claim that carries the ChatGPT account.
const openAIAuthClaim = "https://api.openai.com/auth"

// idTokenClaims is what agentauth reads from a ChatGPT id token.
type idTokenClaims struct {
	AccountID string // chatgpt_account_id
	UserID    string // chatgpt_user_id
	PlanType  string // chatgpt_plan_type
	FedRAMP   bool   // chatgpt_account_is_fedramp
	// Expiry is the top-level exp claim; zero when absent or unreadable.
	Expiry time.Time
	// IssuedAt is the top-level iat claim; zero when absent or unreadable.
	IssuedAt time.Time
}

// parseIDToken decodes the payload of a ChatGPT id token without verifying
// its signature: the token comes from the user's own auth.json, and the
// claims only choose routing headers that the server checks anyway. The
// token must have three non-empty dot-separated parts, as Codex requires.
// Errors describe the problem, never the token or a claim value.
func parseIDToken(tok string) (idTokenClaims, error) {
	payload, err := jwtclaims.Payload(tok)
	if err != nil {
		return idTokenClaims{}, err
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return idTokenClaims{}, errors.New("JWT payload is not a JSON object")
	}
	c := idTokenClaims{Expiry: unixClaim(claims["exp"]), IssuedAt: unixClaim(claims["iat"])}
	raw, ok := claims[openAIAuthClaim]
	if !ok || jsonKind(raw) == "null" {
		return c, nil
	}
	if jsonKind(raw) != "an object" {
		return idTokenClaims{}, errors.New("claim " + openAIAuthClaim + " is not an object")
	}
	var auth struct {
		AccountID *string `json:"chatgpt_account_id"`
		UserID    *string `json:"chatgpt_user_id"`
		PlanType  *string `json:"chatgpt_plan_type"`
		FedRAMP   *bool   `json:"chatgpt_account_is_fedramp"`
	}
	if err := json.Unmarshal(raw, &auth); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return idTokenClaims{}, errors.New("claim " + openAIAuthClaim + " → " + te.Field + ": want " + te.Type.String() + ", got " + te.Value)
		}
		return idTokenClaims{}, errors.New("claim " + openAIAuthClaim + " is malformed")
	}
	if auth.UserID != nil {
		c.UserID = *auth.UserID
	}
	if auth.PlanType != nil {
		c.PlanType = *auth.PlanType
	}
	if auth.AccountID != nil {
		c.AccountID = *auth.AccountID
	}
	if auth.FedRAMP != nil {
		c.FedRAMP = *auth.FedRAMP
	}
	return c, nil
}

// unixClaim reads a NumericDate claim (seconds since the epoch); zero when
// absent, not a number, or out of range.
func unixClaim(raw json.RawMessage) time.Time {
	var n json.Number
	if raw == nil || json.Unmarshal(raw, &n) != nil {
		return time.Time{}
	}
	if f, err := n.Float64(); err == nil && f > 0 && f < 1e11 {
		return time.Unix(int64(f), 0)
	}
	return time.Time{}
}

// accessTokenClaims reads what the access token itself says (it is a JWT
// for ChatGPT logins): its expiry and the user/account claims. An access
// token that is not a readable JWT yields zero claims, never an error: its
// expiry is then unknown and last_refresh decides when to refresh.
func accessTokenClaims(tok string) idTokenClaims {
	c, err := parseIDToken(tok)
	if err != nil {
		return idTokenClaims{}
	}
	return c
}
