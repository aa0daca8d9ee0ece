package identitytest

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/agentauth/agentauth/internal/headers"
)

// routeWhoami is GET .../v1/user-auth-credential/whoami, where a client
// learns the account of a personal access token. Faults cannot be injected
// into it.
const routeWhoami Route = "whoami"

// whoamiPath is the path of the whoami route under an AuthAPI base.
const whoamiPath = "/v1/user-auth-credential/whoami"

// whoamiState is the personal access tokens a server knows, fixed at
// construction, and how many whoami requests it answered.
type whoamiState struct {
	tokens   map[string]Login
	answered atomic.Int64
}

// validatePersonalAccessTokens checks Options.PersonalAccessTokens. Errors
// never quote a token.
func validatePersonalAccessTokens(pats map[string]Login) error {
	for tok, p := range pats {
		if err := validateToken(tok); err != nil {
			return errors.New("identitytest: PersonalAccessTokens: " + err.Error())
		}
		if p.AccountID == "" {
			return errors.New("identitytest: PersonalAccessTokens: an account id is empty")
		}
		if err := (headers.Routing{AccountID: p.AccountID}).Validate(); err != nil {
			return errors.New("identitytest: PersonalAccessTokens: an account id cannot be sent as a header")
		}
	}
	return nil
}

// initWhoami copies the personal access tokens of opts. Each is accepted
// as a Bearer token at protected resources, like an API key, but not at
// agent registration: Codex never provisions an agent identity from one.
func (s *Server) initWhoami(pats map[string]Login) {
	s.whoami = &whoamiState{tokens: make(map[string]Login, len(pats))}
	for tok, p := range pats {
		s.whoami.tokens[tok] = p.account()
		s.apiKeys[tok] = true
	}
}

// WhoamiRequests returns how many whoami requests the server answered
// with 200.
func (s *Server) WhoamiRequests() int64 { return s.whoami.answered.Load() }

// serveWhoami answers GET .../v1/user-auth-credential/whoami: for
// "Authorization: Bearer <token>" with a token of
// Options.PersonalAccessTokens, 200 with {email (null when empty),
// chatgpt_user_id, chatgpt_account_id, chatgpt_plan_type,
// chatgpt_account_is_fedramp}; any other credential, or none, 401
// {"error": "unknown_personal_access_token"}.
func (s *Server) serveWhoami(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.reject(w, r, routeWhoami, http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	vals := r.Header.Values(headers.Authorization)
	var tok string
	if len(vals) == 1 {
		tok, _ = strings.CutPrefix(vals[0], headers.SchemeBearer+" ")
		if tok == vals[0] {
			tok = ""
		}
	}
	p, ok := s.whoami.tokens[tok]
	if tok == "" || !ok {
		s.reject(w, r, routeWhoami, http.StatusUnauthorized, "unknown_personal_access_token")
		return
	}
	var email *string
	if p.Email != "" {
		email = &p.Email
	}
	s.whoami.answered.Add(1)
	s.log.Debug("identitytest: whoami", "chatgpt_account_id", p.AccountID)
	writeJSON(w, http.StatusOK, struct {
		Email     *string `json:"email"`
		UserID    string  `json:"chatgpt_user_id"`
		AccountID string  `json:"chatgpt_account_id"`
		PlanType  string  `json:"chatgpt_plan_type"`
		FedRAMP   bool    `json:"chatgpt_account_is_fedramp"`
	}{email, p.UserID, p.AccountID, p.PlanType, p.FedRAMP})
}
