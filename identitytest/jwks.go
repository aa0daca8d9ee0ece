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

// NewAgentIdentity creates an Agent Identity the way the real backend would
// hand one out: it generates a key from Options.Rand, registers the runtime
// with the server (as [Server.RegisterRuntime] does) and mints a JWT for the
// record with the server's [JWTIssuer], valid for an hour of real time
// (Options.Now is not used for JWT times; [JWTIssuer.Mint] adjusts them).
// runtimeID is the agent_runtime_id, empty for a random "rt-..." id; the
// account fields of who are the record's (empty AccountID, UserID and
// PlanType mean "acct-identitytest", "user-identitytest" and "plus"; an
// empty Email is left out). The returned record and JWT both carry the
// private key; they are secrets.
func (s *Server) NewAgentIdentity(runtimeID string, who Login) (identity.Record, string, error) {
	iss, err := s.Issuer()
	if err != nil {
		return identity.Record{}, "", err
	}
	k, err := identity.GenerateKey(s.rand)
	if err != nil {
		return identity.Record{}, "", fmt.Errorf("identitytest: NewAgentIdentity: %w", err)
	}
	rid := runtimeID
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
		AccountID:       orDefault(who.AccountID, "acct-identitytest"),
		ChatGPTUserID:   orDefault(who.UserID, "user-identitytest"),
		Email:           who.Email,
		PlanType:        orDefault(who.PlanType, "plus"),
		IsFedRAMP:       who.FedRAMP,
	}
	if err := s.RegisterRuntime(rec); err != nil {
		return identity.Record{}, "", err
	}
	tok, err := iss.Mint(rec, MintOptions{})
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
