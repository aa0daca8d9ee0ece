package main

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// readAuthJSON decodes home/auth.json and returns it with its mode.
func readAuthJSON(t *testing.T, home string) (map[string]any, os.FileMode) {
	t.Helper()
	path := filepath.Join(home, "auth.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("auth.json is not JSON: %v", err)
	}
	return doc, fi.Mode().Perm()
}

func tokensOf(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	tok, ok := doc["tokens"].(map[string]any)
	if !ok {
		t.Fatalf("auth.json has no tokens object: %v", doc)
	}
	return tok
}

// expiredAccessToken mints a JWT with the claims of a ChatGPT access token
// that expired an hour ago. Its signature is nobody's: clients read exp
// without verifying it, and the server would reject it if it were sent.
func expiredAccessToken(t *testing.T, accountID, userID string) string {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix(),
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": accountID, "chatgpt_user_id": userID},
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serveStat reads a counter from serve's "stopped" log line.
func serveStat(t *testing.T, logs, name string) string {
	t.Helper()
	m := regexp.MustCompile(`msg="agentauth serve: stopped".* ` + name + `=(\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no %s in the stopped line of %s", name, logs)
	}
	return m[1]
}

// An expired ChatGPT login in a Codex home is refreshed once at serve's
// token endpoint, the request succeeds with the new token, and auth.json
// is left as Codex would leave it: new tokens, last_refresh, every unknown
// field, mode 0600.
func TestDoRefreshesAnExpiredLoginAtServe(t *testing.T) {
	clearCodexEnv(t)
	home := filepath.Join(t.TempDir(), "codex")
	lines, logs, stop := startServeLines(t, 2, "", "--addr", "127.0.0.1:0", "--issue-login", home, "--account-id", "acct-r", "--user-id", "user-r")
	url := lines[0]
	name, tokenURL, ok := strings.Cut(lines[1], "=")
	if !ok || name != credentials.EnvRefreshTokenURL || tokenURL != url+identitytest.TokenPath {
		t.Fatalf("second line %q, want %s=%s%s", lines[1], credentials.EnvRefreshTokenURL, url, identitytest.TokenPath)
	}
	t.Setenv(name, tokenURL)

	// Expire the issued access token, age last_refresh and add fields
	// agentauth does not know, as a newer Codex might.
	doc, _ := readAuthJSON(t, home)
	tok := tokensOf(t, doc)
	issuedAccess, issuedRefresh := tok["access_token"].(string), tok["refresh_token"].(string)
	expired := expiredAccessToken(t, "acct-r", "user-r")
	tok["access_token"] = expired
	tok["future_token_field"] = "kept"
	doc["future_field"] = map[string]any{"nested": true}
	oldRefresh := time.Now().Add(-9 * 24 * time.Hour).UTC()
	doc["last_refresh"] = oldRefresh.Format(time.RFC3339Nano)
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(home, "auth.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	before := time.Now().Add(-time.Second)
	r := runCmd(t, "", "do", "-v", "--codex-home", home, "-d", "{}", url+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer || e.AccountID != "acct-r" {
		t.Fatalf("do with an expired login: %+v", r)
	}
	if !strings.Contains(r.stderr, "> POST "+tokenURL+"\n") {
		t.Errorf("-v does not show the refresh hop:\n%s", r.stderr)
	}

	doc, mode := readAuthJSON(t, home)
	tok = tokensOf(t, doc)
	newAccess, _ := tok["access_token"].(string)
	newRefresh, _ := tok["refresh_token"].(string)
	switch {
	case newAccess == "" || newAccess == expired || newAccess == issuedAccess:
		t.Error("auth.json still holds an old access token")
	case newRefresh == "" || newRefresh == issuedRefresh:
		t.Error("auth.json still holds the used refresh token")
	case tok["id_token"] == nil || tok["id_token"] == "":
		t.Error("auth.json lost its id_token")
	case tok["account_id"] != "acct-r":
		t.Errorf("account_id %v", tok["account_id"])
	}
	lr, err := time.Parse(time.RFC3339Nano, doc["last_refresh"].(string))
	if err != nil || lr.Before(before) {
		t.Errorf("last_refresh %v (%v), want a time after %s", doc["last_refresh"], err, before)
	}
	if tok["future_token_field"] != "kept" || doc["future_field"] == nil {
		t.Errorf("unknown fields lost: %v", doc)
	}
	if mode != 0o600 {
		t.Errorf("auth.json mode %v, want 0600", mode)
	}
	assertNoSecret(t, r, issuedAccess, issuedRefresh, expired, newAccess, newRefresh)

	// A second run uses the refreshed token as it is.
	r = runCmd(t, "", "do", "--codex-home", home, url+"/v1/responses")
	if r.code != 0 {
		t.Fatalf("second run: %+v", r)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	l := logs.String()
	if got := serveStat(t, l, "token_refreshes"); got != "1" {
		t.Errorf("token_refreshes=%s, want 1", got)
	}
	if got := serveStat(t, l, "rejections"); got != "0" {
		t.Errorf("rejections=%s, want 0 (no expired token was sent, no refresh token reused)", got)
	}
	for _, s := range []string{issuedAccess, issuedRefresh, newAccess, newRefresh} {
		if strings.Contains(l, s) {
			t.Error("serve's log holds a token")
		}
	}
}

func TestServeIssueLogin(t *testing.T) {
	clearCodexEnv(t)
	home := filepath.Join(t.TempDir(), "new", "codex")
	lines, logs, stop := startServeLines(t, 2, "", "--addr", "127.0.0.1:0", "--issue-login", home,
		"--account-id", "acct-i", "--user-id", "user-i", "--email", "i@example.com", "--plan-type", "pro", "--token-lifetime", "30m")
	doc, mode := readAuthJSON(t, home)
	if mode != 0o600 {
		t.Errorf("auth.json mode %v, want 0600", mode)
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home %v %v, want mode 0700", fi, err)
	}
	if _, ok := doc["OPENAI_API_KEY"]; !ok || doc["last_refresh"] == nil {
		t.Errorf("auth.json is not in codex login's shape: %v", doc)
	}
	// The library reads it as a ChatGPT login with the given claims.
	creds, err := credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: func(string) string { return "" }})
	if err != nil || creds.Kind != credentials.KindChatGPT {
		t.Fatalf("loading the issued login: %v %v", creds, err)
	}
	if c := creds.ChatGPT; c.AccountID != "acct-i" || c.UserID != "user-i" || c.RefreshToken == "" {
		t.Errorf("issued login %v", c)
	}
	parsed, err := jwt.ParseSigned(creds.ChatGPT.AccessToken, []jose.SignatureAlgorithm{jose.HS256})
	var claims jwt.Claims
	if err != nil || parsed.UnsafeClaimsWithoutVerification(&claims) != nil || claims.Expiry == nil {
		t.Fatalf("the issued access token is not a JWT with exp: %v", err)
	}
	if d := time.Until(claims.Expiry.Time()); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("access token lives %s, want 30m", d)
	}
	// Its access token is accepted as Bearer by this server.
	req, _ := http.NewRequest(http.MethodPost, lines[0]+"/v1/responses", nil)
	req.Header.Set("Authorization", "Bearer "+creds.ChatGPT.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("issued access token: %d, want 200", resp.StatusCode)
	}
	stop()
	if l := logs.String(); !strings.Contains(l, "issued a ChatGPT login") || strings.Contains(l, creds.ChatGPT.AccessToken) || strings.Contains(l, creds.ChatGPT.RefreshToken) {
		t.Errorf("logs %s", l)
	}

	// An existing auth.json (maybe a real login) is never replaced.
	before, _ := os.ReadFile(filepath.Join(home, "auth.json"))
	r := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--issue-login", home)
	assertOneLineError(t, r, exitFailure)
	if !strings.Contains(r.stderr, "already exists") {
		t.Errorf("stderr %q", r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(home, "auth.json")); string(after) != string(before) {
		t.Error("serve replaced an existing auth.json")
	}

	for _, args := range [][]string{
		{"--account-id", "a"},
		{"--user-id", "u"},
		{"--issue-login", ""},
		{"--issue-login", t.TempDir(), "--account-id", ""},
		{"--token-lifetime", "0s"},
	} {
		assertOneLineError(t, runCmd(t, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...), exitUsage)
	}
}

func TestServeSecretsFromStdinAndEnvironment(t *testing.T) {
	clearCodexEnv(t)
	const tokA, tokB, key = "tok-stdin-A-0123456789", "tok-stdin-B-0123456789", "sk-env-key-0123456789"
	status := func(t *testing.T, url, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/responses", nil)
		req.Header.Set("Authorization", "Bearer "+auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		return resp.StatusCode
	}
	t.Setenv(envDoAPIKey, key)
	url, logs, stop := startServe(t, tokA+"\n\n  "+tokB+"\n", "--addr", "127.0.0.1:0", "--access-token-stdin")
	for _, auth := range []string{tokA, tokB, key} {
		if got := status(t, url, auth); got != http.StatusOK {
			t.Errorf("a token from stdin or the environment: %d, want 200", got)
		}
	}
	stop()
	if l := logs.String(); !strings.Contains(l, "access_tokens=2") || !strings.Contains(l, "api_keys=1") || strings.Contains(l, tokA) || strings.Contains(l, key) {
		t.Errorf("logs %s", l)
	}
	// A flag wins over the environment.
	url, _, stop = startServe(t, "", "--addr", "127.0.0.1:0", "--api-key", "sk-flag-key-0123456789")
	if got := status(t, url, key); got != http.StatusUnauthorized {
		t.Errorf("environment key with --api-key given: %d, want 401", got)
	}
	stop()

	rec := writeFile(t, runCmd(t, "", "keygen").stdout)
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"--access-token-stdin"}},
		{tokA, []string{"--access-token-stdin", "--access-token", tokB}},
		{tokA, []string{"--access-token-stdin", "--api-key-stdin"}},
		{tokA, []string{"--access-token-stdin", "--trust-record", "-"}},
		{"bad\x01token\n", []string{"--api-key-stdin"}},
		{"", []string{"--trust-record", rec, "--access-token", ""}},
	} {
		r := runCmd(t, tc.stdin, append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)...)
		assertOneLineError(t, r, exitUsage, tokA, tokB)
	}
}

// A login that is due but still valid is refreshed in the background
// while the request uses it, and do may exit while that refresh runs. It
// must never leave auth.json with a spent refresh token: a refresh whose
// token request went out is finished and stored before do exits; one
// that had not sent anything yet is dropped, and the old tokens stay
// valid.
func TestDoNeverLeavesASpentRefreshToken(t *testing.T) {
	clearCodexEnv(t)
	// The login is issued 3.5 minutes in the past with a 4-minute
	// lifetime: its last quarter has begun, so it is due but still valid.
	var offset atomic.Int64
	offset.Store(int64(-210 * time.Second))
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	srv := newTestServer(t, identitytest.Options{TokenLifetime: 4 * time.Minute, Now: clock})
	t.Setenv(credentials.EnvRefreshTokenURL, srv.TokenURL())
	home := t.TempDir()
	login := writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-bg", UserID: "user-bg"}, nil)
	offset.Store(0)
	// The refresh takes longer than the request.
	srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Latency: 300 * time.Millisecond})

	r := runCmd(t, "", "do", "--codex-home", home, srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer {
		t.Fatalf("do: %+v", r)
	}
	tok := tokensOf(t, func() map[string]any { d, _ := readAuthJSON(t, home); return d }())
	switch n := srv.Stats().TokenRefreshes; n {
	case 1: // the endpoint rotated: the new tokens must be in auth.json
		if tok["refresh_token"] == login.RefreshToken || tok["access_token"] == login.AccessToken {
			t.Error("do exited after the endpoint rotated the login but before the new tokens were stored")
		}
	case 0: // nothing was spent: the old tokens must still be there
		if tok["refresh_token"] != login.RefreshToken {
			t.Error("auth.json changed although no refresh happened")
		}
	default:
		t.Fatalf("%d token refreshes for one due login", n)
	}
}
