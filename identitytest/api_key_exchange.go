package identitytest

import (
	"net/http"
	"net/url"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// verifyOwnToken checks a JWT this server signed (an id or access token)
// and that it has not expired.
func (s *Server) verifyOwnToken(tok string) bool {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return false
	}
	var c jwt.Claims
	if parsed.Claims(s.tokens().hmacKey, &c) != nil || c.Expiry == nil {
		return false
	}
	return s.now().Before(c.Expiry.Time())
}

func (s *Server) serveAPIKeyExchange(w http.ResponseWriter, r *http.Request, f url.Values) {
	switch {
	case f.Get("client_id") != s.oauthClientID:
		s.reject(w, r, RouteToken, http.StatusUnauthorized, "invalid_client")
	case f.Get("requested_token") != "openai-api-key" || f.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:id_token":
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
	case !s.verifyOwnToken(f.Get("subject_token")):
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_grant")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"access_token": "sk-test-" + randomToken(16)})
	}
}
