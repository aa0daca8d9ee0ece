package identitytest

import (
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth/internal/identity"
)

// Issuer returns the server's JWT issuer, whose key set the JWKS route
// serves. It is created on first use (here, at the first JWKS request or
// NewAgentIdentity), because RSA key generation is too slow to pay for in
// every test server that never needs it.
func (s *Server) Issuer() (*JWTIssuer, error) {
	s.issuerOnce.Do(func() {
		s.issuer, s.issuerErr = NewJWTIssuer()
	})
	return s.issuer, s.issuerErr
}

// serveJWKS serves the issuer's key set at every path ending in
// /agent-identities/jwks (so both <base>/agent-identities/jwks and
// <base>/wham/agent-identities/jwks, the two places a client looks for the
// key set, work under any base).
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	iss, err := s.Issuer()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "jwks_unavailable"})
		return
	}
	s.mu.Lock()
	s.stats.JWKSRequests++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(iss.JWKSJSON())
	}
}

// IdentityOptions describes the Agent Identity that [Server.NewAgentIdentity]
// creates. The zero value is a non-FedRAMP identity with the documented
// placeholder account fields.
type IdentityOptions struct {
	// RuntimeID is the agent_runtime_id; empty means a random "rt-..." id.
	RuntimeID string
	// AccountID is account_id; empty means "acct-identitytest".
	AccountID string
	// ChatGPTUserID is chatgpt_user_id; empty means "user-identitytest".
	ChatGPTUserID string
	// Email is the optional email claim; empty leaves it out.
	Email string
	// PlanType is plan_type; empty means "plus".
	PlanType string
	// FedRAMP is chatgpt_account_is_fedramp.
	FedRAMP bool
	// Mint adjusts the JWT (issuer, audience, times, kid). Its zero value
	// mints a token that identity.VerifyAgentIdentityJWT accepts against
	// this server's JWKS at the real current time (Options.Now is not
	// used for JWT times).
	Mint MintOptions
}

// NewAgentIdentity creates an Agent Identity the way the real backend would
// hand one out: it generates a key from Options.Rand, registers the runtime
// with the server (as [Server.RegisterRuntime] does) and mints a JWT for the
// record with the server's [JWTIssuer]. The returned record and JWT both
// carry the private key; they are secrets.
func (s *Server) NewAgentIdentity(opts IdentityOptions) (identity.Record, string, error) {
	iss, err := s.Issuer()
	if err != nil {
		return identity.Record{}, "", err
	}
	k, err := identity.GenerateKey(s.rand)
	if err != nil {
		return identity.Record{}, "", fmt.Errorf("identitytest: NewAgentIdentity: %w", err)
	}
	rid := opts.RuntimeID
	if rid == "" {
		s.mu.Lock()
		rid, err = s.newID("rt-", func(id string) bool { return s.runtimes[id] != nil })
		s.mu.Unlock()
		if err != nil {
			return identity.Record{}, "", err
		}
	}
	rec := identity.Record{
		AgentRuntimeID:  rid,
		AgentPrivateKey: identity.Secret(k.MarshalPrivateKey()),
		AccountID:       orDefault(opts.AccountID, "acct-identitytest"),
		ChatGPTUserID:   orDefault(opts.ChatGPTUserID, "user-identitytest"),
		Email:           opts.Email,
		PlanType:        orDefault(opts.PlanType, "plus"),
		IsFedRAMP:       opts.FedRAMP,
	}
	if err := s.RegisterRuntime(rec); err != nil {
		return identity.Record{}, "", err
	}
	tok, err := iss.Mint(rec, opts.Mint)
	if err != nil {
		return identity.Record{}, "", err
	}
	return rec, tok, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
