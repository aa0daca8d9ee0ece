package identitytest

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DeviceCodeLifetime is how long a device login waits for
// [Server.ApproveDeviceCode] before polling it answers expired_token.
const DeviceCodeLifetime = 15 * time.Minute

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
