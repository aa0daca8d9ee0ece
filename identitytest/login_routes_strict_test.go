package identitytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var (
	jsonHdr = map[string]string{"Content-Type": "application/json"}
	formHdr = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
)

// startDevice starts a device login and returns its id and code.
func startDevice(t *testing.T, c *http.Client, s *Server) (id, code string) {
	t.Helper()
	r := do(t, c, "POST", s.URL()+"/api/accounts/deviceauth/usercode", jsonHdr, mustJSON(t, map[string]string{"client_id": codexClientID}))
	var v map[string]string // interval is a string, as the real issuer sends it
	if r.status != 200 || json.Unmarshal(r.body, &v) != nil || v["device_auth_id"] == "" || v["user_code"] == "" || v["interval"] == "" {
		t.Fatalf("usercode = %d %s", r.status, r.body)
	}
	return v["device_auth_id"], v["user_code"]
}

// The device routes answer pending, slow_down, the grant once, then
// invalid_grant; an expired code answers expired_token.
func TestDeviceRoutesAnswerPendingSlowDownExpired(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	c := newClient(t)
	s.SetDeviceCodeInterval(5)
	id, code := startDevice(t, c, s)
	poll := func(id, code string) response {
		return do(t, c, "POST", s.URL()+"/api/accounts/deviceauth/token", jsonHdr, mustJSON(t, map[string]string{"device_auth_id": id, "user_code": code}))
	}
	if r := poll(id, code); r.status != 403 || errorReason(t, r) != "authorization_pending" {
		t.Fatalf("first poll = %d %s", r.status, r.body)
	}
	if r := poll(id, code); r.status != 403 || errorReason(t, r) != "slow_down" {
		t.Fatalf("early poll = %d %s", r.status, r.body)
	}
	if r := poll(id, "WRONG-CODE"); r.status != 400 || errorReason(t, r) != "invalid_grant" {
		t.Fatalf("wrong code = %d %s", r.status, r.body)
	}
	if err := s.ApproveDeviceCode(code, Login{AccountID: "acct"}); err != nil {
		t.Fatal(err)
	}
	clock.Add(5 * time.Second)
	r := poll(id, code)
	var g map[string]string
	if r.status != 200 || json.Unmarshal(r.body, &g) != nil || g["authorization_code"] == "" || s256(g["code_verifier"]) != g["code_challenge"] {
		t.Fatalf("approved poll = %d", r.status)
	}
	if r := poll(id, code); r.status != 400 || errorReason(t, r) != "invalid_grant" {
		t.Fatalf("poll after the grant = %d %s", r.status, r.body)
	}
	// The code exchanges once, only with the verifier and the device redirect URI.
	exchange := func(verifier, redirect string) response {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {g["authorization_code"]}, "client_id": {codexClientID},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}
		return do(t, c, "POST", s.URL()+"/oauth/token", formHdr, []byte(f.Encode()))
	}
	if r := exchange("not-the-verifier", s.URL()+"/deviceauth/callback"); r.status != 400 || errorReason(t, r) != "invalid_grant" {
		t.Fatalf("wrong verifier = %d %s", r.status, r.body)
	}
	if r := exchange(g["code_verifier"], s.URL()+"/deviceauth/callback"); r.status != 400 {
		t.Fatalf("a code tried once with a wrong verifier still exchanged: %d", r.status)
	}

	id2, code2 := startDevice(t, c, s)
	clock.Add(DeviceCodeLifetime)
	if r := poll(id2, code2); r.status != 410 || errorReason(t, r) != "expired_token" {
		t.Fatalf("expired poll = %d %s", r.status, r.body)
	}
}

// authorize refuses bad parameters without redirecting, and a code is
// single use and bound to its PKCE challenge and redirect URI.
func TestAuthorizeAndCodeGrantAreStrict(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	s.SetAuthorizeLogin(&Login{AccountID: "acct-a"})
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	verifier := strings.Repeat("v", 64)
	good := url.Values{"response_type": {"code"}, "client_id": {codexClientID}, "redirect_uri": {"http://localhost:1455/auth/callback"},
		"scope": {"openid profile email offline_access"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}, "state": {"st"}}
	for name, mutate := range map[string]func(url.Values){
		"client":    func(q url.Values) { q.Set("client_id", "other") },
		"redirect":  func(q url.Values) { q.Set("redirect_uri", "https://evil.example/auth/callback") },
		"plain":     func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"challenge": func(q url.Values) { q.Set("code_challenge", "short") },
		"state":     func(q url.Values) { q.Del("state") },
		"scope":     func(q url.Values) { q.Set("scope", "openid") },
	} {
		q := url.Values{}
		for k, v := range good {
			q[k] = append([]string(nil), v...)
		}
		mutate(q)
		if r := do(t, c, "GET", s.URL()+"/oauth/authorize?"+q.Encode(), nil, nil); r.status != 400 {
			t.Errorf("%s: authorize = %d, want 400", name, r.status)
		}
	}
	r := do(t, c, "GET", s.URL()+"/oauth/authorize?"+good.Encode(), nil, nil)
	loc, err := url.Parse(r.header.Get("Location"))
	if r.status != 302 || err != nil || loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize = %d %q", r.status, r.header.Get("Location"))
	}
	f := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {codexClientID},
		"redirect_uri": {"http://localhost:1455/auth/callback"}, "code_verifier": {verifier}}
	if r := do(t, c, "POST", s.URL()+"/oauth/token", formHdr, []byte(f.Encode())); r.status != 200 {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	if r := do(t, c, "POST", s.URL()+"/oauth/token", formHdr, []byte(f.Encode())); r.status != 400 || errorReason(t, r) != "invalid_grant" {
		t.Fatalf("second exchange = %d %s", r.status, r.body)
	}
}

// revoke needs the client id with a refresh token and makes it unusable.
func TestRevokeRoute(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := newClient(t)
	l, err := s.IssueLogin(Login{AccountID: "acct-r"})
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, c, "POST", s.URL()+"/oauth/revoke", jsonHdr, mustJSON(t, map[string]string{"token": l.RefreshToken, "token_type_hint": "refresh_token"})); r.status != 401 {
		t.Fatalf("revoke without client id = %d", r.status)
	}
	if s.TokenRevoked(l.RefreshToken) {
		t.Fatal("revoked without a client id")
	}
	if r := do(t, c, "POST", s.URL()+"/oauth/revoke", jsonHdr, mustJSON(t, map[string]string{"token": l.RefreshToken, "token_type_hint": "refresh_token", "client_id": codexClientID})); r.status != 200 {
		t.Fatalf("revoke = %d", r.status)
	}
	r := do(t, c, "POST", s.URL()+"/oauth/token", jsonHdr, mustJSON(t, map[string]string{"client_id": codexClientID, "grant_type": "refresh_token", "refresh_token": l.RefreshToken}))
	if r.status != 401 || !strings.Contains(string(r.body), CodeRefreshTokenInvalidated) {
		t.Fatalf("refresh after revoke = %d %s", r.status, r.body)
	}
	if r := do(t, c, "POST", s.URL()+"/oauth/revoke", jsonHdr, mustJSON(t, map[string]string{"token": l.AccessToken, "token_type_hint": "access_token"})); r.status != 200 || !s.TokenRevoked(l.AccessToken) {
		t.Fatalf("access revoke = %d", r.status)
	}
	if r := do(t, c, "GET", s.URL()+"/v1/anything", map[string]string{"Authorization": "Bearer " + l.AccessToken}, nil); r.status != 401 {
		t.Fatalf("a revoked access token still works: %d", r.status)
	}
}
