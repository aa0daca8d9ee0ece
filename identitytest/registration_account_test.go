package identitytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Agent registration takes the runtime's account from the Bearer token, as
// the real AuthAPI does (current Codex sends no ChatGPT-Account-ID there):
// a token the server issued carries it in its claims, a configured token
// has the one AccessTokenAccounts gives, and a header saying otherwise is
// ignored. Only a configured token whose account is unknown falls back to
// the header.
func TestAgentRegistrationAccountFromToken(t *testing.T) {
	s, _ := newTestServer(t, Options{
		AccessTokens:        []string{"tok-unknown-account"},
		AccessTokenAccounts: map[string]string{"tok-mapped": "acct-mapped"},
	})
	login, err := s.IssueLogin(Login{AccountID: "acct-issued", UserID: "user-1"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	for i, tc := range []struct {
		name, token, header, want string
	}{
		{"issued token, no header", login.AccessToken, "", "acct-issued"},
		{"issued token, other header", login.AccessToken, "acct-other", "acct-issued"},
		{"mapped token, no header", "tok-mapped", "", "acct-mapped"},
		{"mapped token, other header", "tok-mapped", "acct-other", "acct-mapped"},
		{"configured token, header fallback", "tok-unknown-account", "acct-header", "acct-header"},
		{"configured token, no header", "tok-unknown-account", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + tc.token}
			if tc.header != "" {
				hdr["ChatGPT-Account-ID"] = tc.header
			}
			k := testKey(t, byte(10+i))
			r := do(t, c, http.MethodPost, s.URL()+"/v1/agent/register", hdr, agentBody(t, k.SSHPublicKey()))
			if r.status != http.StatusOK {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
			var out struct {
				ID string `json:"agent_runtime_id"`
			}
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			for _, rt := range s.Runtimes() {
				if rt.RuntimeID == out.ID {
					if rt.AccountID != tc.want {
						t.Fatalf("runtime account %q, want %q", rt.AccountID, tc.want)
					}
					return
				}
			}
			t.Fatalf("runtime %s not listed", out.ID)
		})
	}
	// A mapped token is accepted at resources too, and Options print
	// without it.
	r := do(t, c, http.MethodGet, s.URL()+"/v1/models", map[string]string{"Authorization": "Bearer tok-mapped"}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("resource with a mapped token: status %d", r.status)
	}
	if got := fmt.Sprint(Options{AccessTokenAccounts: map[string]string{"tok-mapped": "a"}}); strings.Contains(got, "tok-mapped") {
		t.Fatalf("Options.String shows the token: %s", got)
	}
}
