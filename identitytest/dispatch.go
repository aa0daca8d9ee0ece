package identitytest

import (
	"encoding/json"
	"net/http"
	"strings"
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "server_closed"})
		return
	}
	defer s.inflight.Done()
	if s.serveLoginRoutes(w, r) {
		return
	}

	route, rid := classify(r.URL.Path)
	if route == "" {
		s.reject(w, r, route, http.StatusNotFound, "not_found")
		return
	}
	if f, ok := s.takeFault(route); ok {
		s.log.Debug("identitytest: fault", "route", string(route), "method", r.Method, "path", r.URL.Path)
		if s.serveFault(w, r, f) {
			return
		}
	}
	switch route {
	case RouteJWKS:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.reject(w, r, route, http.StatusMethodNotAllowed, "method_not_allowed")
			return
		}
		s.serveJWKS(w, r)
	case RouteAgentRegister, RouteTaskRegister:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			s.reject(w, r, route, http.StatusMethodNotAllowed, "method_not_allowed")
			return
		}
		if route == RouteAgentRegister {
			s.serveAgentRegister(w, r)
		} else {
			s.serveTaskRegister(w, r, rid)
		}
	case RouteResource:
		s.serveResource(w, r)
	case RouteToken:
		s.serveToken(w, r)
	case routeWhoami:
		s.serveWhoami(w, r)
	}
}

// classify maps a path to its route. Registration routes may sit under any
// prefix (an AuthAPI base such as URL+"/api/accounts"), and so may the JWKS
// (URL+"/backend-api/wham/agent-identities/jwks"); protected resources are
// the rest of /v1/.
func classify(path string) (route Route, runtimeID string) {
	if strings.HasSuffix(path, "/agent-identities/jwks") {
		return RouteJWKS, ""
	}
	if strings.HasSuffix(path, TokenPath) {
		return RouteToken, ""
	}
	if strings.HasSuffix(path, whoamiPath) {
		return routeWhoami, ""
	}
	if i := strings.Index(path, "/v1/agent/"); i >= 0 {
		rest := path[i+len("/v1/agent/"):]
		if rest == "register" {
			return RouteAgentRegister, ""
		}
		if rid, ok := strings.CutSuffix(rest, "/task/register"); ok && rid != "" && !strings.Contains(rid, "/") {
			return RouteTaskRegister, rid
		}
	}
	if strings.HasPrefix(path, "/v1/") {
		return RouteResource, ""
	}
	return "", ""
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// reject answers a 4xx the server chose and counts it. reason is a fixed
// identifier, never request data.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, route Route, status int, reason string) {
	s.mu.Lock()
	s.stats.Rejections++
	s.stats.RejectionsByReason[reason]++
	s.mu.Unlock()
	s.log.Debug("identitytest: rejected", "route", string(route), "method", r.Method, "path", r.URL.Path,
		"status", status, "reason", reason)
	writeJSON(w, status, errorBody{Error: reason})
}
