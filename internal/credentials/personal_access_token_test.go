package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/google/go-cmp/cmp"
)

const testPAT = "at-example-secret-123"

// whoamiServer answers every request with status and body and records the
// requests' method, path and Authorization.
func whoamiServer(t *testing.T, status int, body string) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func TestHydratePersonalAccessTokenSendsBearerAndDecodesNullableEmail(t *testing.T) {
	srv, seen := whoamiServer(t, 200, `{"email":null,"chatgpt_user_id":"user-123","chatgpt_account_id":"account-123",`+
		`"chatgpt_plan_type":"enterprise","chatgpt_account_is_fedramp":true,"something_new":1}`)
	md, err := HydratePersonalAccessToken(context.Background(), srv.Client(), srv.URL+"/api/accounts/", testPAT)
	if err != nil {
		t.Fatal(err)
	}
	want := &PersonalAccessTokenMetadata{UserID: "user-123", AccountID: "account-123", PlanType: "enterprise", FedRAMP: true}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GET /api/accounts/v1/user-auth-credential/whoami Bearer " + testPAT}, seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if r := md.Routing(); r.AccountID != "account-123" || !r.FedRAMP {
		t.Errorf("Routing() = %+v", r)
	}
	if l := md.Login(); l != (Login{AccountID: "account-123", UserID: "user-123"}) {
		t.Errorf("Login() = %+v", l)
	}
}

func TestHydratePersonalAccessTokenAgainstIdentitytest(t *testing.T) {
	s, err := identitytest.NewServer(identitytest.Options{PersonalAccessTokens: map[string]identitytest.Login{
		testPAT: {Email: "a@example.com", UserID: "user-a", AccountID: "acct-a", PlanType: "plus"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	md, err := HydratePersonalAccessToken(context.Background(), client, s.URL()+"/api/accounts", testPAT)
	if err != nil {
		t.Fatal(err)
	}
	if want := (PersonalAccessTokenMetadata{Email: "a@example.com", UserID: "user-a", AccountID: "acct-a", PlanType: "plus"}); *md != want {
		t.Errorf("metadata %+v, want %+v", *md, want)
	}
	_, err = HydratePersonalAccessToken(context.Background(), client, s.URL(), "at-unknown")
	var pe *PersonalAccessTokenError
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized || pe.Code != "unknown_personal_access_token" || pe.Temporary() {
		t.Errorf("unknown token: %v (%#v), want a permanent 401 with the server's code", err, pe)
	}
}

func TestHydratePersonalAccessTokenFailuresAreTypedAndSecretFree(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		wantCode  string
		temporary bool
		mention   string // part of the message
	}{
		{"401 with a code", 401, `{"error":{"code":"Token_Revoked","message":"` + testPAT + ` was revoked"}}`, "token_revoked", false, "create a new one"},
		{"401 echoing the token as its code", 401, `{"error":"` + testPAT + `"}`, "", false, "HTTP 401"},
		{"403", 403, `{"code":"forbidden"}`, "forbidden", false, "HTTP 403"},
		{"garbage", 200, `<html>` + testPAT + `</html>`, "", false, "not a JSON object"},
		{"wrong type", 200, `{"email":null,"chatgpt_user_id":"u","chatgpt_account_id":"` + testPAT + `","chatgpt_plan_type":"p","chatgpt_account_is_fedramp":"` + testPAT + `"}`, "", false, "chatgpt_account_is_fedramp"},
		{"no account", 200, `{"email":"e","chatgpt_user_id":"u","chatgpt_plan_type":"p","chatgpt_account_is_fedramp":false}`, "", false, "no chatgpt_account_id"},
		{"empty account", 200, `{"email":"e","chatgpt_user_id":"u","chatgpt_account_id":"","chatgpt_plan_type":"p","chatgpt_account_is_fedramp":false}`, "", false, "no chatgpt_account_id"},
		{"null user", 200, `{"email":"e","chatgpt_user_id":null,"chatgpt_account_id":"a","chatgpt_plan_type":"p","chatgpt_account_is_fedramp":false}`, "", false, "no chatgpt_user_id"},
		{"unsendable account", 200, `{"email":"e","chatgpt_user_id":"u","chatgpt_account_id":"a\nb","chatgpt_plan_type":"p","chatgpt_account_is_fedramp":false}`, "", false, "cannot be sent"},
		{"503", 503, `{"error":"server_error"}`, "server_error", true, "HTTP 503"},
		{"429", 429, ``, "", true, "HTTP 429"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := whoamiServer(t, tc.status, tc.body)
			md, err := HydratePersonalAccessToken(context.Background(), srv.Client(), srv.URL, testPAT)
			var pe *PersonalAccessTokenError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, %v; want a *PersonalAccessTokenError", md, err)
			}
			if pe.Status != tc.status || pe.Code != tc.wantCode || pe.Temporary() != tc.temporary {
				t.Errorf("Status %d Code %q Temporary %v, want %d %q %v", pe.Status, pe.Code, pe.Temporary(), tc.status, tc.wantCode, tc.temporary)
			}
			for _, out := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, pe)} {
				if strings.Contains(out, testPAT) || strings.Contains(out, "<html>") {
					t.Errorf("output holds the token or the body: %s", out)
				}
			}
			if !strings.Contains(err.Error(), tc.mention) || !strings.HasPrefix(err.Error(), "credentials: ") {
				t.Errorf("message %q, want the prefix and %q", err, tc.mention)
			}
		})
	}
}

// A redirect could carry the token to another host or scheme: it is not
// followed.
func TestHydratePersonalAccessTokenDoesNotFollowRedirects(t *testing.T) {
	var other atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusFound)
	}))
	defer srv.Close()
	client := srv.Client()
	_, err := HydratePersonalAccessToken(context.Background(), client, srv.URL, testPAT)
	var pe *PersonalAccessTokenError
	if !errors.As(err, &pe) || pe.Status != http.StatusFound {
		t.Fatalf("got %v, want a 302 error", err)
	}
	if n := other.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	if client.CheckRedirect != nil {
		t.Error("the caller's client was modified")
	}
}

func TestHydratePersonalAccessTokenRefusesUnsafeInputsWithoutSending(t *testing.T) {
	for _, tc := range []struct{ name, base, tok string }{
		{"plain http elsewhere", "http://auth.example.com/api/accounts", testPAT},
		{"userinfo", "https://u:p@auth.example.com", testPAT},
		{"query", "https://auth.example.com/?x=1", testPAT},
		{"relative", "/api/accounts", testPAT},
		{"empty token", "https://auth.example.com", ""},
		{"newline in token", "https://auth.example.com", testPAT + "\n"},
	} {
		// A client whose transport fails the test proves nothing is sent.
		client := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			t.Errorf("%s: a request was sent", tc.name)
			return nil, errors.New("unreachable")
		})}
		_, err := HydratePersonalAccessToken(context.Background(), client, tc.base, tc.tok)
		var pe *PersonalAccessTokenError
		if !errors.As(err, &pe) || pe.Status != 0 || pe.Temporary() {
			t.Errorf("%s: got %v, want a permanent error before sending", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), testPAT) {
			t.Errorf("%s: message holds the token: %v", tc.name, err)
		}
	}
}

// No answer at all (the server is gone) is temporary.
func TestHydratePersonalAccessTokenNetworkErrorIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := HydratePersonalAccessToken(context.Background(), nil, url, testPAT)
	var pe *PersonalAccessTokenError
	if !errors.As(err, &pe) || pe.Status != 0 || !pe.Temporary() || strings.Contains(err.Error(), testPAT) {
		t.Errorf("got %v, want a temporary error without the token", err)
	}
}

func TestPersonalAccessTokenLoginIsANeverManagedChatGPTLogin(t *testing.T) {
	md := PersonalAccessTokenMetadata{UserID: "u", AccountID: "acct", PlanType: "pro", FedRAMP: true}
	c := PersonalAccessTokenLogin(testPAT, md, "env CODEX_ACCESS_TOKEN")
	want := ChatGPTLogin{AccessToken: testPAT, AccountID: "acct", UserID: "u", FedRAMP: true, ExternallyManaged: true}
	if c.Kind != KindChatGPT || !c.PersonalAccessToken || c.ChatGPT == nil || *c.ChatGPT != want || c.Source != "env CODEX_ACCESS_TOKEN" {
		t.Errorf("got %+v", c)
	}
	if r := c.Routing(); r.AccountID != "acct" || !r.FedRAMP {
		t.Errorf("Routing() = %+v", r)
	}
	if out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c.ChatGPT); strings.Contains(out, testPAT) {
		t.Errorf("output holds the token: %s", out)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
