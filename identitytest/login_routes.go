package identitytest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
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

// DeviceCodeLifetime is how long a device login waits for
// [Server.ApproveDeviceCode] before polling it answers expired_token.
const DeviceCodeLifetime = 15 * time.Minute

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

// SetDeviceCodeInterval sets the poll interval, in seconds, the usercode
// route answers (default 5). Zero makes clients poll at their own floor.
func (s *Server) SetDeviceCodeInterval(seconds int) {
	s.login.mu.Lock()
	defer s.login.mu.Unlock()
	s.logins().interval = max(seconds, 0)
}

// ApproveDeviceCode approves a pending device login, as the user does on
// the verification page, for the login c. It fails for an unknown, spent
// or expired code.
func (s *Server) ApproveDeviceCode(userCode string, c Login) error {
	if c.AccountID == "" {
		return errors.New("identitytest: ApproveDeviceCode: AccountID is required")
	}
	s.login.mu.Lock()
	defer s.login.mu.Unlock()
	for _, d := range s.logins().devices {
		if d.userCode == userCode && !d.spent && s.now().Before(d.expires) {
			c = c.account()
			d.approved = &c
			return nil
		}
	}
	return errors.New("identitytest: ApproveDeviceCode: no pending device login has that code")
}

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

func (s *Server) serveDeviceUserCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID string `json:"client_id"`
	}
	if !decodeStrict(r, &req) {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
		return
	}
	if req.ClientID != s.oauthClientID {
		s.reject(w, r, RouteToken, http.StatusUnauthorized, "invalid_client")
		return
	}
	id := "deviceauth_" + randomToken(16)
	code := deviceUserCode()
	s.login.mu.Lock()
	ls := s.logins()
	now := s.now()
	for k, d := range ls.devices { // bounded: forget expired and spent logins
		if d.spent || !now.Before(d.expires) {
			delete(ls.devices, k)
		}
	}
	if len(ls.devices) >= maxPendingLogins {
		s.login.mu.Unlock()
		s.reject(w, r, RouteToken, http.StatusTooManyRequests, "too_many_pending_logins")
		return
	}
	ls.devices[id] = &deviceEntry{userCode: code, clientID: req.ClientID, expires: now.Add(DeviceCodeLifetime)}
	interval := ls.interval
	s.login.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"device_auth_id": id, "user_code": code, "interval": strconv.Itoa(interval),
	})
}

func (s *Server) serveDeviceToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DeviceAuthID string `json:"device_auth_id"`
		UserCode     string `json:"user_code"`
	}
	if !decodeStrict(r, &req) {
		s.reject(w, r, RouteToken, http.StatusBadRequest, "invalid_request")
		return
	}
	s.login.mu.Lock()
	ls := s.logins()
	d, ok := ls.devices[req.DeviceAuthID]
	now := s.now()
	var reason string
	status := http.StatusForbidden
	var grant map[string]string
	switch {
	case !ok || d.spent || subtle.ConstantTimeCompare([]byte(d.userCode), []byte(req.UserCode)) != 1:
		status, reason = http.StatusBadRequest, "invalid_grant"
	case !now.Before(d.expires):
		status, reason = http.StatusGone, "expired_token"
	case d.approved == nil && !d.lastPoll.IsZero() && now.Sub(d.lastPoll) < time.Duration(ls.interval)*time.Second:
		reason = "slow_down"
	case d.approved == nil:
		reason = "authorization_pending"
	default:
		d.spent = true
		verifier := randomToken(48)
		code := "ac_" + randomToken(24)
		ls.codes[code] = &codeEntry{
			clientID: d.clientID, redirectURI: s.issuerBase(r) + "/deviceauth/callback",
			challenge: s256(verifier), claims: *d.approved, expires: now.Add(authorizationCodeLifetime),
		}
		grant = map[string]string{"authorization_code": code, "code_challenge": s256(verifier), "code_verifier": verifier}
	}
	if ok {
		d.lastPoll = now
	}
	s.login.mu.Unlock()
	if grant != nil {
		writeJSON(w, http.StatusOK, grant)
		return
	}
	s.reject(w, r, RouteToken, status, reason)
}

// issuerBase is the issuer URL a client used: the server URL plus any
// prefix before the route (the device routes sit under /api/accounts).
func (s *Server) issuerBase(r *http.Request) string {
	p := r.URL.Path
	if i := strings.Index(p, "/api/accounts/deviceauth/"); i >= 0 {
		return s.url + p[:i]
	}
	for _, suffix := range []string{"/oauth/authorize", "/oauth/token"} {
		if i := strings.LastIndex(p, suffix); i >= 0 {
			return s.url + p[:i]
		}
	}
	return s.url
}

// deviceUserCode returns a code like "K7QD-3MWXP" from an alphabet
// without look-alike characters.
func deviceUserCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [9]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 10)
	for i, c := range b {
		if i == 4 {
			out = append(out, '-')
		}
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
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
