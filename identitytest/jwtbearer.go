package identitytest

import (
	"net/http"
	"net/url"
)

// jwtBearerGrant is the grant workload identity federation uses.
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

func (s *Server) serveJWTBearer(w http.ResponseWriter, r *http.Request, f url.Values) {
	s.reject(w, r, RouteToken, http.StatusBadRequest, "unsupported_grant_type")
}
