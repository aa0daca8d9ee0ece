package identitytest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func refreshBody(t *testing.T, clientID, rt string) []byte {
	return mustJSON(t, map[string]string{"client_id": clientID, "grant_type": "refresh_token", "refresh_token": rt})
}

func codeOf(t *testing.T, r response) string {
	t.Helper()
	var e tokenError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	return e.Error.Code
}

// claimsOf decodes a JWT payload without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Refresh tokens are single use and rotate; reuse, revocation, expiry and
// a wrong client get Codex's error shapes; counters say what happened.
func TestTokenEndpointRotatesSingleUseRefreshTokens(t *testing.T) {
	s, clock := newTestServer(t, Options{TokenLifetime: 30 * time.Minute, RefreshTokenLifetime: 2 * time.Hour})
	c := newClient(t)
	l, err := s.IssueLogin(Login{AccountID: "acct-t", UserID: "user-t", FedRAMP: true})
	if err != nil {
		t.Fatal(err)
	}
	claims := claimsOf(t, l.AccessToken)
	auth, _ := claims["https://api.openai.com/auth"].(map[string]any)
	if auth["chatgpt_account_id"] != "acct-t" || auth["chatgpt_user_id"] != "user-t" || auth["chatgpt_account_is_fedramp"] != true || auth["chatgpt_plan_type"] != "plus" {
		t.Errorf("access token claims: %v", claims)
	}
	if exp, _ := claims["exp"].(float64); int64(exp) != clock.Now().Add(30*time.Minute).Unix() {
		t.Errorf("exp = %v", claims["exp"])
	}

	r := do(t, c, http.MethodPost, s.TokenURL(), map[string]string{"Content-Type": "application/json"}, refreshBody(t, codexClientID, l.RefreshToken))
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	var next struct{ IDToken, AccessToken, RefreshToken string }
	var raw map[string]any
	json.Unmarshal(r.body, &raw)
	next.IDToken, _ = raw["id_token"].(string)
	next.AccessToken, _ = raw["access_token"].(string)
	next.RefreshToken, _ = raw["refresh_token"].(string)
	if next.AccessToken == "" || next.RefreshToken == "" || next.IDToken == "" || next.RefreshToken == l.RefreshToken || next.AccessToken == l.AccessToken {
		t.Fatalf("response: %s", r.body)
	}

	// Reuse of the old refresh token.
	r = do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, l.RefreshToken))
	if r.status != 401 || codeOf(t, r) != CodeRefreshTokenReused {
		t.Fatalf("reuse: %d %s", r.status, r.body)
	}
	// Revoked.
	s.RevokeRefreshToken(next.RefreshToken)
	r = do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, next.RefreshToken))
	if r.status != 401 || codeOf(t, r) != CodeRefreshTokenInvalidated {
		t.Fatalf("revoked: %d %s", r.status, r.body)
	}
	// Expired.
	l2, _ := s.IssueLogin(Login{AccountID: "acct-t"})
	clock.Add(2 * time.Hour)
	r = do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, l2.RefreshToken))
	if r.status != 401 || codeOf(t, r) != CodeRefreshTokenExpired {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
	// Unknown token, wrong client, wrong grant.
	r = do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, "rt-unknown"))
	if r.status != 400 || errorReason(t, r) != "invalid_grant" {
		t.Fatalf("unknown: %d %s", r.status, r.body)
	}
	l3, _ := s.IssueLogin(Login{AccountID: "acct-t"})
	r = do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, "app_other", l3.RefreshToken))
	if r.status != 401 || codeOf(t, r) != "invalid_client" {
		t.Fatalf("wrong client: %d %s", r.status, r.body)
	}
	r = do(t, c, http.MethodPost, s.TokenURL(), nil, mustJSON(t, map[string]string{"client_id": codexClientID, "grant_type": "password"}))
	if r.status != 400 {
		t.Fatalf("wrong grant: %d", r.status)
	}
	st := s.Stats()
	if st.TokenRefreshes != 1 || st.RejectionsByReason[CodeRefreshTokenReused] != 1 || st.RejectionsByReason[CodeRefreshTokenInvalidated] != 1 ||
		st.RejectionsByReason[CodeRefreshTokenExpired] != 1 || st.RejectionsByReason["invalid_grant"] != 1 {
		t.Errorf("stats: %+v", st)
	}
	// A wrong-client request did not burn the token.
	if r := do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, l3.RefreshToken)); r.status != 200 {
		t.Errorf("the token was burnt by a rejected request: %d", r.status)
	}
}

// Issued access tokens are Bearer tokens at agent registration and at
// protected resources until they expire.
func TestIssuedAccessTokensAccepted(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	c := newClient(t)
	l, _ := s.IssueLogin(Login{AccountID: "acct-b"})
	bearer := map[string]string{"Authorization": "Bearer " + l.AccessToken}
	if r := do(t, c, http.MethodGet, s.URL()+"/v1/thing", bearer, nil); r.status != 200 {
		t.Fatalf("resource: %d %s", r.status, r.body)
	}
	k := testKey(t, 9)
	body := mustJSON(t, map[string]any{
		"abom":             map[string]string{"agent_version": "1", "agent_harness_id": "h", "running_location": "l"},
		"agent_public_key": k.SSHPublicKey(), "capabilities": []string{"responsesapi"}, "ttl": nil,
	})
	if r := do(t, c, http.MethodPost, s.URL()+"/v1/agent/register", bearer, body); r.status != 200 {
		t.Fatalf("agent registration: %d %s", r.status, r.body)
	}
	clock.Add(DefaultTokenLifetime)
	if r := do(t, c, http.MethodGet, s.URL()+"/v1/thing", bearer, nil); r.status != 401 {
		t.Fatalf("an expired access token was accepted: %d", r.status)
	}
}

// Faults apply to the token route.
func TestTokenRouteFaults(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := newClient(t)
	l, _ := s.IssueLogin(Login{AccountID: "acct-f"})
	s.InjectFault(RouteToken, Fault{Status: 503, Times: 1})
	if r := do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, l.RefreshToken)); r.status != 503 {
		t.Fatalf("fault: %d", r.status)
	}
	if r := do(t, c, http.MethodPost, s.TokenURL(), nil, refreshBody(t, codexClientID, l.RefreshToken)); r.status != 200 {
		t.Fatalf("after the fault: %d %s", r.status, r.body)
	}
	if st := s.Stats(); st.FaultsServed != 1 || st.TokenRefreshes != 1 {
		t.Errorf("stats: %+v", st)
	}
}

// AuthJSON is the shape `codex login` writes, and Login redacts itself.
func TestAuthJSONShapeAndLoginRedaction(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	l, _ := s.IssueLogin(Login{AccountID: "acct-j"})
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(l.AuthJSON(clock.Now()), &doc); err != nil {
		t.Fatal(err)
	}
	if string(doc["OPENAI_API_KEY"]) != "null" || doc["tokens"] == nil || doc["last_refresh"] == nil || len(doc) != 3 {
		t.Errorf("auth.json: %v", doc)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "login", l, "nested", []any{l})
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", l, l, l, *l), b.String(), string(mustJSON(t, l))} {
		for _, secret := range []string{l.AccessToken, l.RefreshToken, l.IDToken} {
			if strings.Contains(out, secret) {
				t.Fatalf("a token leaked: %s", out)
			}
		}
	}
}
