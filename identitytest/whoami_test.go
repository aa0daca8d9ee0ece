package identitytest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

var testPATs = map[string]Login{
	"at-alice": {Email: "alice@example.com", UserID: "user-a", AccountID: "acct-a", PlanType: "pro"},
	"at-fed":   {UserID: "user-f", AccountID: "acct-f", PlanType: "enterprise", FedRAMP: true},
}

func TestWhoamiDescribesAKnownPersonalAccessToken(t *testing.T) {
	s, _ := newTestServer(t, Options{PersonalAccessTokens: testPATs})
	c := newClient(t)
	for _, tc := range []struct {
		tok, base, want string
	}{
		{"at-alice", s.URL(), `{"email":"alice@example.com","chatgpt_user_id":"user-a","chatgpt_account_id":"acct-a","chatgpt_plan_type":"pro","chatgpt_account_is_fedramp":false}`},
		// An AuthAPI base with a path prefix works too; no email is null.
		{"at-fed", s.URL() + "/api/accounts", `{"email":null,"chatgpt_user_id":"user-f","chatgpt_account_id":"acct-f","chatgpt_plan_type":"enterprise","chatgpt_account_is_fedramp":true}`},
	} {
		r := do(t, c, http.MethodGet, tc.base+whoamiPath, map[string]string{"Authorization": "Bearer " + tc.tok}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d body %s", tc.tok, r.status, r.body)
		}
		if got := strings.TrimSpace(string(r.body)); got != tc.want {
			t.Errorf("%s: body\n%s\nwant\n%s", tc.tok, got, tc.want)
		}
	}
	if n := s.WhoamiRequests(); n != 2 {
		t.Errorf("WhoamiRequests() = %d, want 2", n)
	}
}

func TestWhoamiRejectsEverythingElse(t *testing.T) {
	s, _ := newTestServer(t, Options{PersonalAccessTokens: testPATs, AccessTokens: []string{"tok-access"}, APIKeys: []string{"sk-api"}})
	c := newClient(t)
	url := s.URL() + whoamiPath
	for _, tc := range []struct {
		name, method string
		hdr          map[string]string
		status       int
		reason       string
	}{
		{"unknown PAT", http.MethodGet, map[string]string{"Authorization": "Bearer at-unknown"}, 401, "unknown_personal_access_token"},
		{"access token", http.MethodGet, map[string]string{"Authorization": "Bearer tok-access"}, 401, "unknown_personal_access_token"},
		{"API key", http.MethodGet, map[string]string{"Authorization": "Bearer sk-api"}, 401, "unknown_personal_access_token"},
		{"no credential", http.MethodGet, nil, 401, "unknown_personal_access_token"},
		{"other scheme", http.MethodGet, map[string]string{"Authorization": "at-alice"}, 401, "unknown_personal_access_token"},
		{"POST", http.MethodPost, map[string]string{"Authorization": "Bearer at-alice"}, 405, "method_not_allowed"},
	} {
		r := do(t, c, tc.method, url, tc.hdr, nil)
		if r.status != tc.status || errorReason(t, r) != tc.reason {
			t.Errorf("%s: status %d body %s, want %d %q", tc.name, r.status, r.body, tc.status, tc.reason)
		}
		if strings.Contains(string(r.body), "at-") {
			t.Errorf("%s: the answer quotes the token: %s", tc.name, r.body)
		}
	}
	if n := s.WhoamiRequests(); n != 0 {
		t.Errorf("WhoamiRequests() = %d, want 0", n)
	}
}

// A personal access token is a Bearer credential at protected resources,
// like an API key, and cannot register an agent: Codex never provisions an
// agent identity from one.
func TestPersonalAccessTokenIsBearerAtResourcesOnly(t *testing.T) {
	s, _ := newTestServer(t, Options{PersonalAccessTokens: testPATs})
	c := newClient(t)
	r := do(t, c, http.MethodGet, s.URL()+"/v1/models", map[string]string{
		"Authorization": "Bearer at-alice", "ChatGPT-Account-ID": "acct-a"}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("resource: status %d body %s", r.status, r.body)
	}
	var e Echo
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Mode != ModeBearer || e.AccountID != "acct-a" {
		t.Errorf("echo %+v, want Bearer for acct-a", e)
	}
	r = do(t, c, http.MethodPost, s.URL()+"/v1/agent/register", map[string]string{"Authorization": "Bearer at-alice"},
		agentBody(t, testKey(t, 1).SSHPublicKey()))
	if r.status != http.StatusUnauthorized {
		t.Errorf("agent registration with a PAT: status %d body %s, want 401", r.status, r.body)
	}
}

func TestPersonalAccessTokensOptionIsValidated(t *testing.T) {
	for name, pats := range map[string]map[string]Login{
		"empty account": {"at-x": {UserID: "u"}},
		"bad account":   {"at-x": {AccountID: "a\nb"}},
		"empty token":   {"": {AccountID: "a"}},
	} {
		s, err := NewServer(Options{PersonalAccessTokens: pats})
		if err == nil {
			s.Close()
			t.Errorf("%s: NewServer accepted it", name)
			continue
		}
		if strings.Contains(err.Error(), "at-x") {
			t.Errorf("%s: error quotes the token: %v", name, err)
		}
	}
}
