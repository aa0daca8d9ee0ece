package identitytest

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The sign-in routes, served under any prefix like the token endpoint:
//
//   - POST .../deviceauth/usercode, JSON {"client_id"}: starts a device
//     login; answers {"device_auth_id", "user_code", "interval"} (the
//     interval in seconds, as a string, as the real issuer sends it).
//   - POST .../deviceauth/token, JSON {"device_auth_id", "user_code"}:
//     403 {"error": "authorization_pending"} until [Server.ApproveDeviceCode],
//     403 {"error": "slow_down"} when polled sooner than the interval, 410
//     {"error": "expired_token"} after DeviceCodeLifetime, 400 invalid_grant
//     for an unknown or spent pair; once approved, 200
//     {"authorization_code", "code_challenge", "code_verifier"}, once.
//   - GET .../oauth/authorize: checks response_type=code, the client id, a
//     loopback http redirect_uri ending /auth/callback, a scope with openid
//     and offline_access, code_challenge_method=S256 with a 43-character
//     challenge, and a state; then redirects to redirect_uri with a code
//     and the state for the login [Server.SetAuthorizeLogin] set, or with
//     error=access_denied when none is set. Bad parameters are 400 and
//     never redirect.
//   - POST .../oauth/token, form-encoded: grant_type authorization_code
//     (single-use code of at most authorizationCodeLifetime, same client id
//     and redirect_uri, code_verifier whose S256 is the challenge),
//     token-exchange for an API key (requested_token=openai-api-key, a
//     subject id token this server signed) and the JWT-bearer grant of
//     workload identity federation (see jwtbearer.go). JSON bodies go on
//     to the refresh grant.
//   - POST .../oauth/revoke, JSON {"token", "token_type_hint",
//     "client_id"}: a refresh_token hint needs the client id; known tokens
//     stop working (refresh_token_invalidated, 401 at resources); unknown
//     tokens are answered 200 too (RFC 7009).

const (
	authorizationCodeLifetime = 10 * time.Minute // of an authorization code
	maxPendingLogins          = 1024
)

type loginState struct {
	mu        sync.Mutex
	interval  int // device poll interval, seconds
	devices   map[string]*deviceEntry
	codes     map[string]*codeEntry
	authorize *Login
	revoked   map[string]bool // revoked access tokens
	rules     map[string]FederationRule
	exchanges int // successful JWT-bearer exchanges
}

type deviceEntry struct {
	userCode string
	clientID string
	expires  time.Time
	lastPoll time.Time
	approved *Login
	spent    bool
}

type codeEntry struct {
	clientID    string
	redirectURI string
	challenge   string
	claims      Login
	expires     time.Time
	used        bool
}

func (s *Server) logins() *loginState {
	ls := &s.login
	if ls.devices == nil {
		ls.devices = map[string]*deviceEntry{}
		ls.codes = map[string]*codeEntry{}
		ls.revoked = map[string]bool{}
		ls.interval = 5
	}
	return ls
}

// serveLoginRoutes answers the sign-in routes and reports whether it did.
func (s *Server) serveLoginRoutes(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/deviceauth/usercode"):
		s.postOnly(w, r, s.serveDeviceUserCode)
	case strings.HasSuffix(p, "/deviceauth/token"):
		s.postOnly(w, r, s.serveDeviceToken)
	case strings.HasSuffix(p, "/oauth/authorize"):
		s.serveAuthorize(w, r)
	case strings.HasSuffix(p, "/oauth/revoke"):
		s.postOnly(w, r, s.serveRevoke)
	case strings.HasSuffix(p, TokenPath) && r.Method == http.MethodPost && isForm(r):
		if f, ok := s.takeFault(RouteToken); ok && s.serveFault(w, r, f) {
			return true // faults of the token route apply to every grant
		}
		s.serveFormToken(w, r)
	default:
		return false
	}
	return true
}

func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

func (s *Server) postOnly(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request)) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.reject(w, r, RouteToken, http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	h(w, r)
}

// decodeStrict decodes one JSON object of string members into v, refusing
// unknown members and trailing data.
func decodeStrict(r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	return dec.Decode(&struct{}{}) == io.EOF
}

func (s *Server) serveFormToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
		return
	}
	f := r.PostForm
	for _, v := range f {
		if len(v) != 1 {
			s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
			return
		}
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		s.serveCodeGrant(w, r, f)
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		s.serveAPIKeyExchange(w, r, f)
	case jwtBearerGrant:
		s.serveJWTBearer(w, r, f)
	default:
		s.reject(w, r, RouteToken, http.StatusBadRequest, "unsupported_grant_type")
	}
}
