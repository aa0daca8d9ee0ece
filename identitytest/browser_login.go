package identitytest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SetAuthorizeLogin sets the login the authorize route signs in as (nil:
// the user declines, error=access_denied).
func (s *Server) SetAuthorizeLogin(c *Login) {
	s.login.mu.Lock()
	defer s.login.mu.Unlock()
	s.logins()
	if c == nil {
		s.login.authorize = nil
		return
	}
	cc := c.account()
	s.login.authorize = &cc
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// loopbackCallback reports whether u is http://localhost:PORT/auth/callback
// (or 127.0.0.1), the redirect URI Codex registers.
func loopbackCallback(u *url.URL) bool {
	if u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Path != "/auth/callback" {
		return false
	}
	h := u.Hostname()
	if h != "localhost" && h != "127.0.0.1" {
		return false
	}
	port, err := strconv.Atoi(u.Port())
	return err == nil && port > 0 && port < 65536
}

func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.reject(w, r, RouteToken, http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	scopes := strings.Fields(q.Get("scope"))
	has := func(v string) bool {
		for _, sc := range scopes {
			if sc == v {
				return true
			}
		}
		return false
	}
	var reason string
	switch {
	case q.Get("client_id") != s.oauthClientID:
		reason = "invalid_client"
	case err != nil || !loopbackCallback(redirect):
		reason = "invalid_redirect_uri"
	case q.Get("response_type") != "code":
		reason = "unsupported_response_type"
	case !has("openid") || !has("offline_access"):
		reason = "invalid_scope"
	case q.Get("code_challenge_method") != "S256":
		reason = "invalid_code_challenge_method"
	case len(q.Get("code_challenge")) != 43 || strings.Trim(q.Get("code_challenge"), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "":
		reason = "invalid_code_challenge"
	case q.Get("state") == "":
		reason = "missing_state"
	}
	if reason != "" {
		s.reject(w, r, RouteToken, http.StatusBadRequest, reason)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	s.login.mu.Lock()
	ls := s.logins()
	now := s.now()
	for k, c := range ls.codes {
		if c.used || !now.Before(c.expires) {
			delete(ls.codes, k)
		}
	}
	switch {
	case ls.authorize == nil:
		back.Set("error", "access_denied")
		back.Set("error_description", "The user declined the sign-in.")
	case len(ls.codes) >= maxPendingLogins:
		back.Set("error", "temporarily_unavailable")
	default:
		code := "ac_" + randomToken(24)
		ls.codes[code] = &codeEntry{
			clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
			challenge: q.Get("code_challenge"), claims: *ls.authorize, expires: now.Add(authorizationCodeLifetime),
		}
		back.Set("code", code)
	}
	s.login.mu.Unlock()
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) serveCodeGrant(w http.ResponseWriter, r *http.Request, f url.Values) {
	s.login.mu.Lock()
	c, ok := s.logins().codes[f.Get("code")]
	var reason string
	switch {
	case !ok || c.used:
		reason = "invalid_grant"
	case !s.now().Before(c.expires):
		reason = "invalid_grant"
	case f.Get("client_id") != c.clientID:
		reason = "invalid_client"
	case f.Get("redirect_uri") != c.redirectURI:
		reason = "invalid_grant"
	case subtle.ConstantTimeCompare([]byte(s256(f.Get("code_verifier"))), []byte(c.challenge)) != 1:
		reason = "invalid_grant"
	}
	if ok {
		c.used = true // single use, also when the attempt failed
	}
	s.login.mu.Unlock()
	if reason != "" {
		status := http.StatusBadRequest
		if reason == "invalid_client" {
			status = http.StatusUnauthorized
		}
		s.reject(w, r, RouteToken, status, reason)
		return
	}
	l, err := s.issue(c.claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id_token": l.IDToken, "access_token": l.AccessToken, "refresh_token": l.RefreshToken,
		"token_type": "Bearer", "expires_in": int(s.tokenLifetime / time.Second),
	})
}
