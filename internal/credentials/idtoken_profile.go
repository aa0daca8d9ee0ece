package credentials

import (
	"encoding/json"

	"github.com/agentauth/agentauth/internal/jwtclaims"
)

// idTokenProfile returns the email and ChatGPT plan type an id token
// names, as Codex reads them (email: the top-level claim, else the profile
// claim's; plan: https://api.openai.com/auth → chatgpt_plan_type), "" for
// what is absent or unreadable. It never fails: these only describe the
// login in a saved agent identity record.
func idTokenProfile(tok string) (email, plan string) {
	if c, err := parseIDToken(tok); err == nil {
		plan = c.PlanType
	}
	payload, err := jwtclaims.Payload(tok)
	if err != nil {
		return "", plan
	}
	var claims struct {
		Email   *string `json:"email"`
		Profile *struct {
			Email *string `json:"email"`
		} `json:"https://api.openai.com/profile"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return "", plan
	}
	switch {
	case claims.Email != nil:
		email = *claims.Email
	case claims.Profile != nil && claims.Profile.Email != nil:
		email = *claims.Profile.Email
	}
	return email, plan
}
