package identitytest

import (
	"net/http"
)

// TokenRevoked reports whether tok (a refresh or access token this server
// issued) was revoked at the revoke route or with [Server.RevokeRefreshToken].
func (s *Server) TokenRevoked(tok string) bool {
	s.login.mu.Lock()
	revoked := s.logins().revoked[tok]
	s.login.mu.Unlock()
	if revoked {
		return true
	}
	ts := s.tokens()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e, ok := ts.refresh[tok]
	return ok && e.revoked
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token         string `json:"token"`
		TokenTypeHint string `json:"token_type_hint"`
		ClientID      string `json:"client_id"`
	}
	if !decodeStrict(r, &req) || req.Token == "" {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
		return
	}
	switch req.TokenTypeHint {
	case "refresh_token":
		if req.ClientID != s.oauthClientID {
			s.reject(w, r, RouteToken, http.StatusUnauthorized, "invalid_client")
			return
		}
		s.RevokeRefreshToken(req.Token)
	case "access_token":
		ts := s.tokens()
		ts.mu.Lock()
		_, known := ts.access[req.Token]
		delete(ts.access, req.Token)
		ts.mu.Unlock()
		if known {
			s.login.mu.Lock()
			ls := s.logins()
			if len(ls.revoked) < maxPendingLogins {
				ls.revoked[req.Token] = true
			}
			s.login.mu.Unlock()
		}
	default:
		s.reject(w, r, RouteToken, http.StatusBadRequest, "unsupported_token_type")
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
