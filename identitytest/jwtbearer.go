package identitytest

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtBearerGrant is the grant workload identity federation uses.
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// maxFederationLifetime caps the access tokens the JWT-bearer grant issues,
// as the real issuer does (Codex refuses longer ones).
const maxFederationLifetime = time.Hour

// FederationRule maps a platform's OIDC tokens to a ChatGPT principal for
// workload identity federation: the JWT-bearer grant at POST .../oauth/token
// (form grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion,
// federation_rule_id) accepts an assertion signed by Key (RS256, PS256,
// ES256 or EdDSA) whose iss is Issuer, whose aud holds Audience and that
// has not expired by the server's clock, and answers a short-lived access
// token for Login with Codex's fields (access_token, token_type Bearer,
// issued_token_type, expires_in, scope, chatgpt_account_id,
// chatgpt_account_user_id, chatgpt_plan_type, user_id).
type FederationRule struct {
	ID       string
	Issuer   string
	Audience string
	Key      any   // public key: *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or *jose.JSONWebKey
	Login    Login // the account fields only
}

// AddFederationRule registers (or replaces) a federation rule.
func (s *Server) AddFederationRule(r FederationRule) error {
	if r.ID == "" || r.Issuer == "" || r.Audience == "" || r.Key == nil || r.Login.AccountID == "" || r.Login.UserID == "" {
		return errors.New("identitytest: AddFederationRule: ID, Issuer, Audience, Key, Login.AccountID and Login.UserID are required")
	}
	r.Login = r.Login.account()
	if r.Login.PlanType == "" {
		r.Login.PlanType = "enterprise"
	}
	s.login.mu.Lock()
	defer s.login.mu.Unlock()
	ls := s.logins()
	if ls.rules == nil {
		ls.rules = map[string]FederationRule{}
	}
	if _, ok := ls.rules[r.ID]; !ok && len(ls.rules) >= maxPendingLogins {
		return errors.New("identitytest: AddFederationRule: too many rules")
	}
	ls.rules[r.ID] = r
	return nil
}

// FederationExchanges is the number of successful JWT-bearer exchanges.
func (s *Server) FederationExchanges() int {
	s.login.mu.Lock()
	defer s.login.mu.Unlock()
	return s.login.exchanges
}

var federationAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

func (s *Server) serveJWTBearer(w http.ResponseWriter, r *http.Request, f url.Values) {
	for k := range f {
		switch k {
		case "grant_type", "assertion", "federation_rule_id", "client_id":
		default:
			s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
			return
		}
	}
	s.login.mu.Lock()
	rule, ok := s.logins().rules[f.Get("federation_rule_id")]
	s.login.mu.Unlock()
	if !ok {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_federation_rule")
		return
	}
	tok, err := jwt.ParseSigned(f.Get("assertion"), federationAlgorithms)
	if err != nil {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_assertion")
		return
	}
	var c jwt.Claims
	if err := tok.Claims(rule.Key, &c); err != nil {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_assertion_signature")
		return
	}
	if c.Expiry == nil {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_assertion_expiry")
		return
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: rule.Issuer, AnyAudience: jwt.Audience{rule.Audience}, Time: s.now()}, 0); err != nil {
		reason := "invalid_assertion_claims"
		switch {
		case errors.Is(err, jwt.ErrExpired):
			reason = "invalid_assertion_expiry"
		case errors.Is(err, jwt.ErrInvalidIssuer):
			reason = "invalid_assertion_issuer"
		case errors.Is(err, jwt.ErrInvalidAudience):
			reason = "invalid_assertion_audience"
		}
		s.reject(w, r, RouteToken, http.StatusBadRequest, reason)
		return
	}
	l, err := s.issue(rule.Login)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal"})
		return
	}
	s.login.mu.Lock()
	s.login.exchanges++
	s.login.mu.Unlock()
	lifetime := min(s.tokenLifetime, maxFederationLifetime)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":            l.AccessToken,
		"token_type":              "Bearer",
		"issued_token_type":       "urn:ietf:params:oauth:token-type:access_token",
		"scope":                   "model.request",
		"expires_in":              int(lifetime / time.Second),
		"chatgpt_account_id":      rule.Login.AccountID,
		"chatgpt_account_user_id": rule.Login.UserID + "__" + rule.Login.AccountID,
		"chatgpt_plan_type":       rule.Login.PlanType,
		"user_id":                 rule.Login.UserID,
	})
}
