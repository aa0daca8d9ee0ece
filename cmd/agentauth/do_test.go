package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

const (
	doAPIKey = "sk-do-SECRET-apikey-0123456789"
	doToken  = "at-do-SECRET-token-0123456789"
)

// assertNoSecret fails if any secret appears in the command's output.
func assertNoSecret(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output contains a secret:\nstdout %q\nstderr %q", r.stdout, r.stderr)
		}
	}
}

// lastResource returns the last protected-resource request the server saw.
func lastResource(t *testing.T, srv *identitytest.Server) identitytest.SeenRequest {
	t.Helper()
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatal("the server saw no resource request")
	}
	return reqs[len(reqs)-1]
}

func decodeEcho(t *testing.T, stdout string) identitytest.Echo {
	t.Helper()
	var e identitytest.Echo
	if err := json.Unmarshal([]byte(stdout), &e); err != nil {
		t.Fatalf("stdout %q is not the server's echo: %v", stdout, err)
	}
	return e
}

func TestDoAPIKey(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}})
	// Flags after the URL work as with curl; --thread changes nothing for
	// an API key.
	r := runCmd(t, "", "do", "--api-key", doAPIKey, "--thread", "th-1", srv.URL()+"/v1/responses", "-X", "PUT", "-d", `{"x":1}`)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("do: %+v", r)
	}
	if e := decodeEcho(t, r.stdout); e.Mode != identitytest.ModeBearer {
		t.Errorf("echo %+v", e)
	}
	q := lastResource(t, srv)
	if q.Method != "PUT" || string(q.Body) != `{"x":1}` || q.Header.Get("Content-Type") != "application/json" ||
		q.Header.Get("Authorization") != "Bearer "+doAPIKey ||
		q.Header.Values("ChatGPT-Account-ID") != nil || q.Header.Values("X-OpenAI-Fedramp") != nil {
		t.Errorf("request as received: %v (want Bearer <key>, no routing headers)", q)
	}
	if st := srv.Stats(); st.TaskRegistrations != 0 || st.AgentRegistrations != 0 {
		t.Errorf("registrations happened for an API key: %+v", st)
	}
	assertNoSecret(t, r, doAPIKey)
}

func TestDoAccessTokenBearer(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AccessTokens: []string{doToken}})
	for _, fedramp := range []bool{false, true} {
		args := []string{"do", "--access-token", doToken, "--account-id", "acct-bearer", srv.URL() + "/v1/responses"}
		if fedramp {
			args = append(args, "--fedramp")
		}
		r := runCmd(t, "", args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("do: %+v", r)
		}
		e := decodeEcho(t, r.stdout)
		q := lastResource(t, srv)
		wantFed := ""
		if fedramp {
			wantFed = "true"
		}
		if e.Mode != identitytest.ModeBearer || e.AccountID != "acct-bearer" || e.FedRAMP != fedramp || q.Method != "GET" ||
			q.Header.Get("Authorization") != "Bearer "+doToken || q.Header.Get("ChatGPT-Account-ID") != "acct-bearer" ||
			q.Header.Get("X-OpenAI-Fedramp") != wantFed {
			t.Errorf("fedramp=%v: echo %+v, request %v", fedramp, e, q)
		}
		assertNoSecret(t, r, doToken)
	}
	if st := srv.Stats(); st.AgentRegistrations != 0 || st.TaskRegistrations != 0 {
		t.Errorf("flag off but registrations happened: %+v", st)
	}
}

func TestDoUseAgentIdentity(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AccessTokens: []string{doToken}})
	base := srv.URL()
	r := runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-agent", "--fedramp", "--use-agent-identity",
		"--authapi", base, "--thread", "th-42", "-v", base+"/v1/responses")
	if r.code != 0 {
		t.Fatalf("do: %+v", r)
	}
	e := decodeEcho(t, r.stdout)
	q := lastResource(t, srv)
	if e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != "th-42" || e.AccountID != "acct-agent" || !e.FedRAMP ||
		!strings.HasPrefix(q.Header.Get("Authorization"), "AgentAssertion ") ||
		q.Header.Get("ChatGPT-Account-ID") != "acct-agent" || q.Header.Get("X-OpenAI-Fedramp") != "true" {
		t.Errorf("echo %+v, request %v: want an AgentAssertion on the thread task with routing", e, q)
	}
	// -v shows every request as sent (agent registration, task
	// registration, the resource) with credentials redacted.
	for _, want := range []string{
		"> POST " + base + "/v1/agent/register\n",
		"> POST " + base + "/v1/agent/" + e.AgentRuntimeID + "/task/register\n",
		"> GET " + base + "/v1/responses\n",
		"> Authorization: Bearer [REDACTED]\n",
		"> Authorization: AgentAssertion [REDACTED]\n",
		"> Chatgpt-Account-Id: acct-agent\n",
		"> X-Openai-Fedramp: true\n",
		"< HTTP/1.1 200 OK\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-v output lacks %q:\n%s", want, r.stderr)
		}
	}
	assertNoSecret(t, r, doToken, q.Header.Get("Authorization"), strings.TrimPrefix(q.Header.Get("Authorization"), "AgentAssertion "))

	// Without --thread: the process task, registered without
	// external_task_ref. The identity of --access-token lives for one run
	// only, so this run provisions another.
	r = runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-agent", "--use-agent-identity", "--authapi", base, base+"/v1/responses")
	if r.code != 0 {
		t.Fatalf("do: %+v", r)
	}
	e2 := decodeEcho(t, r.stdout)
	if e2.Mode != identitytest.ModeAssertion || e2.ExternalTaskRef != "" || e2.AgentRuntimeID == e.AgentRuntimeID {
		t.Errorf("echo %+v: want the process task of a new runtime", e2)
	}
	st := srv.Stats()
	if st.AgentRegistrations != 2 || st.ThreadTaskRegistrations != 1 || st.ProcessTaskRegistrations != 1 || st.RegistrationsByExternalRef["th-42"] != 1 {
		t.Errorf("server stats %+v", st)
	}
	assertNoSecret(t, r, doToken)
}

func TestDoRecord(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{})
	rec, _, err := srv.NewAgentIdentity("", identitytest.Login{AccountID: "acct-rec", FedRAMP: true})
	if err != nil {
		t.Fatal(err)
	}
	// Record.MarshalJSON redacts the key; write the record as auth tools do.
	data, _ := json.Marshal(map[string]any{
		"agent_runtime_id": rec.AgentRuntimeID, "agent_private_key": rec.AgentPrivateKey.Reveal(), "account_id": rec.AccountID,
		"chatgpt_user_id": rec.ChatGPTUserID, "plan_type": rec.PlanType, "chatgpt_account_is_fedramp": rec.IsFedRAMP,
	})
	path := writeFile(t, string(data))
	r := runCmd(t, "", "do", "--record", path, "--authapi", srv.URL(), "--thread", "th-rec", "-v", srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeAssertion || e.AgentRuntimeID != rec.AgentRuntimeID ||
		e.ExternalTaskRef != "th-rec" || e.AccountID != "acct-rec" || !e.FedRAMP {
		t.Fatalf("do --record: %+v echo %+v", r, e)
	}
	assertNoSecret(t, r, rec.AgentPrivateKey.Reveal())

	// A keygen record on stdin, its runtime known to the server: process
	// task, and no routing headers since it names no account.
	kg := runCmd(t, "", "keygen")
	var k keygenRecord
	if err := json.Unmarshal([]byte(kg.stdout), &k); err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterRuntime(identity.Record{AgentRuntimeID: k.AgentRuntimeID, AgentPrivateKey: identity.Secret(k.AgentPrivateKey)}); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, kg.stdout, "do", "--record", "-", "--authapi", srv.URL(), "--use-agent-identity", srv.URL()+"/v1/responses")
	e := decodeEcho(t, r.stdout)
	q := lastResource(t, srv)
	if r.code != 0 || e.Mode != identitytest.ModeAssertion || e.AgentRuntimeID != k.AgentRuntimeID || e.ExternalTaskRef != "" ||
		q.Header.Values("ChatGPT-Account-ID") != nil {
		t.Fatalf("do --record -: %+v echo %+v request %v", r, e, q)
	}
	assertNoSecret(t, r, k.AgentPrivateKey)
}

// recorder is an httptest handler that keeps the headers it received.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	next    http.HandlerFunc
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
	rc.next(w, r)
}

func (rc *recorder) seen() []http.Header {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]http.Header(nil), rc.headers...)
}

func TestDoRedirectToOtherOriginGetsNoCredential(t *testing.T) {
	idsrv := newTestServer(t, identitytest.Options{AccessTokens: []string{doToken}})
	other := &recorder{next: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("landed\n")) }}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	first := &recorder{next: func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherSrv.URL+"/landed", http.StatusTemporaryRedirect)
	}}
	firstSrv := httptest.NewServer(first)
	defer firstSrv.Close()

	cases := []struct {
		name     string
		args     []string
		wantAuth string // prefix at the first-party origin
	}{
		{"api key", []string{"--api-key", doAPIKey}, "Bearer " + doAPIKey},
		{"access token", []string{"--access-token", doToken, "--account-id", "acct-r"}, "Bearer " + doToken},
		{"agent identity", []string{"--access-token", doToken, "--account-id", "acct-r", "--use-agent-identity", "--authapi", idsrv.URL(), "--thread", "th-r"}, "AgentAssertion "},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"do", "-v"}, tc.args...), "-d", "{}", firstSrv.URL+"/start")
			r := runCmd(t, "", args...)
			if r.code != 0 || r.stdout != "landed\n" {
				t.Fatalf("do: %+v", r)
			}
			f, o := first.seen(), other.seen()
			if len(f) != i+1 || len(o) != i+1 {
				t.Fatalf("first origin saw %d requests, other %d; want %d each", len(f), len(o), i+1)
			}
			if got := f[i].Get("Authorization"); !strings.HasPrefix(got, tc.wantAuth) {
				t.Errorf("first-party request Authorization has the wrong scheme or credential")
			}
			for _, h := range []string{"Authorization", "ChatGPT-Account-ID", "X-OpenAI-Fedramp"} {
				if o[i].Values(h) != nil {
					t.Errorf("the redirect target on another origin received %s", h)
				}
			}
			if !strings.Contains(r.stderr, "> POST "+otherSrv.URL+"/landed\n") || !strings.Contains(r.stderr, "< HTTP/1.1 307 Temporary Redirect\n") {
				t.Errorf("-v does not show both hops:\n%s", r.stderr)
			}
			assertNoSecret(t, r, doAPIKey, doToken)
		})
	}
}

func TestDoVerboseRedactsCallerHeaders(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}})
	r := runCmd(t, "", "do", "-v", "--api-key", doAPIKey, "-H", "X-Api-Key: "+doAPIKey, "-H", "X-Echo: "+doAPIKey+"-suffix",
		"-H", "Authorization: Bearer caller-set-ignored", srv.URL()+"/v1/responses")
	if r.code != 0 {
		t.Fatalf("do: %+v", r)
	}
	if q := lastResource(t, srv); q.Header.Get("Authorization") != "Bearer "+doAPIKey || q.Header.Get("X-Echo") != doAPIKey+"-suffix" {
		t.Errorf("request %v: the transport replaces a caller-set Authorization and keeps other headers", q)
	}
	for _, want := range []string{"> X-Api-Key: [REDACTED]\n", "> X-Echo: [REDACTED]-suffix\n", "> Authorization: Bearer [REDACTED]\n"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-v lacks %q:\n%s", want, r.stderr)
		}
	}
	assertNoSecret(t, r, doAPIKey, "caller-set-ignored")
}

// clearCodexEnv empties every environment variable that would make a
// Codex-home test read something other than its own files.
func clearCodexEnv(t *testing.T) {
	t.Helper()
	for _, env := range []string{credentials.EnvCodexAPIKey, credentials.EnvOpenAIAPIKey, credentials.EnvCodexAccessToken,
		credentials.EnvCodexAgentIdentity, credentials.EnvCodexHome, credentials.EnvRefreshTokenURL, credentials.EnvClientID,
		"AGENTAUTH_USE_AGENT_IDENTITY", identity.EnvAuthAPIBase, identity.EnvCodexAuthAPIBase, identity.EnvJWKSBase, envDoAPIKey, envDoAccessToken} {
		t.Setenv(env, "")
	}
}

// writeLogin issues a ChatGPT login at srv and writes it to home/auth.json
// in the shape `codex login` leaves, after edit (nil: none) has changed
// the decoded document.
func writeLogin(t *testing.T, srv *identitytest.Server, home string, c identitytest.Login, edit func(doc map[string]any)) *identitytest.Login {
	t.Helper()
	l, err := srv.IssueLogin(c)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(l.AuthJSON(time.Now()), &doc); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(doc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "auth.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDoCodexHome(t *testing.T) {
	clearCodexEnv(t)
	srv := newTestServer(t, identitytest.Options{})
	t.Setenv(credentials.EnvRefreshTokenURL, srv.TokenURL())
	home := t.TempDir()
	authPath := filepath.Join(home, "auth.json")
	login := writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-home", UserID: "user-home"}, func(doc map[string]any) { doc["keep"] = 1 })
	args := []string{"do", "--codex-home", home, "--use-agent-identity", "--authapi", srv.URL(), srv.URL() + "/v1/responses"}
	r := runCmd(t, "", args...)
	e := decodeEcho(t, r.stdout)
	if r.code != 0 || e.Mode != identitytest.ModeAssertion || e.AccountID != "acct-home" {
		t.Fatalf("do --codex-home: %+v echo %+v", r, e)
	}
	// The provisioned identity was persisted next to the login ...
	stored, err := credentials.NewFileStore(authPath).LoadAgentIdentity(t.Context(), credentials.Login{AccountID: "acct-home", UserID: "user-home"})
	if err != nil || stored == nil || stored.AgentRuntimeID != e.AgentRuntimeID {
		t.Fatalf("stored identity %v, %v; want runtime %s", stored, err, e.AgentRuntimeID)
	}
	// ... and a later run reuses it instead of registering another agent.
	r = runCmd(t, "", args...)
	if e2 := decodeEcho(t, r.stdout); r.code != 0 || e2.AgentRuntimeID != e.AgentRuntimeID || srv.Stats().AgentRegistrations != 1 {
		t.Fatalf("second run: %+v echo %+v stats %+v", r, e2, srv.Stats())
	}
	assertNoSecret(t, r, login.AccessToken, login.RefreshToken, stored.AgentPrivateKey.Reveal())
	if n := srv.Stats().TokenRefreshes; n != 0 {
		t.Errorf("%d token refreshes for a fresh login, want 0", n)
	}
	// The record is in auth.json's agent_identity, where Codex reads it,
	// next to the fields agentauth does not know.
	var doc map[string]any
	if b, err := os.ReadFile(authPath); err != nil || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("auth.json: %v", err)
	}
	if rec, ok := doc["agent_identity"].(map[string]any); !ok || rec["agent_runtime_id"] != e.AgentRuntimeID || doc["keep"] != float64(1) {
		t.Errorf("auth.json after provisioning: agent_identity %v, keep %v", doc["agent_identity"], doc["keep"])
	}

	// Without the flag the same login is sent as Bearer.
	r = runCmd(t, "", "do", "--codex-home", home, srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer {
		t.Fatalf("flag off: %+v", r)
	}
}

func TestDoCodexHomeAgentIdentityJWT(t *testing.T) {
	for _, env := range []string{credentials.EnvCodexAPIKey, credentials.EnvOpenAIAPIKey, credentials.EnvCodexAgentIdentity, identity.EnvAuthAPIBase} {
		t.Setenv(env, "")
	}
	srv := newTestServer(t, identitytest.Options{})
	t.Setenv(identity.EnvJWKSBase, srv.URL())
	rec, jwt, err := srv.NewAgentIdentity("", identitytest.Login{AccountID: "acct-jwt"})
	if err != nil {
		t.Fatal(err)
	}
	writeHome := func(token string) string {
		home := t.TempDir()
		if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte(`{"auth_mode":"agentIdentity","agent_identity":"`+token+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		return home
	}

	// Verified against the server's JWKS.
	r := runCmd(t, "", "do", "--codex-home", writeHome(jwt), "--authapi", srv.URL(), "--thread", "th-jwt", srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeAssertion || e.AgentRuntimeID != rec.AgentRuntimeID || e.AccountID != "acct-jwt" {
		t.Fatalf("verified JWT: %+v", r)
	}
	if srv.Stats().JWKSRequests == 0 {
		t.Error("the JWKS was not fetched")
	}

	// A JWT from an issuer the JWKS does not know is refused unless the
	// caller asks for an unverified decode.
	foreign, err := identitytest.NewJWTIssuer()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := foreign.Mint(rec, identitytest.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	home := writeHome(forged)
	r = runCmd(t, "", "do", "--codex-home", home, "--authapi", srv.URL(), srv.URL()+"/v1/responses")
	assertOneLineError(t, r, exitFailure, forged, rec.AgentPrivateKey.Reveal())
	assertNoSecret(t, r, forged, rec.AgentPrivateKey.Reveal())
	r = runCmd(t, "", "do", "--codex-home", home, "--insecure-unverified-jwt", "--authapi", srv.URL(), srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.AgentRuntimeID != rec.AgentRuntimeID {
		t.Fatalf("--insecure-unverified-jwt: %+v", r)
	}
	assertNoSecret(t, r, forged, rec.AgentPrivateKey.Reveal())
}

func TestDoErrors(t *testing.T) {
	for _, env := range []string{credentials.EnvCodexAPIKey, credentials.EnvOpenAIAPIKey, credentials.EnvCodexAgentIdentity} {
		t.Setenv(env, "")
	}
	// A server that accepts no token: agent registration is refused (401).
	closedSrv := newTestServer(t, identitytest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String() + "/v1/responses"
	ln.Close()

	cases := []struct {
		name string
		args []string
	}{
		{"connection refused", []string{"--api-key", doAPIKey, deadURL}},
		{"provisioning refused", []string{"--access-token", doToken, "--account-id", "acct-e", "--use-agent-identity", "--authapi", closedSrv.URL(), closedSrv.URL() + "/v1/responses"}},
		{"empty codex home", []string{"--codex-home", t.TempDir(), closedSrv.URL()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, "", append([]string{"do"}, tc.args...)...)
			assertOneLineError(t, r, exitFailure, doAPIKey, doToken)
			assertNoSecret(t, r, doAPIKey, doToken)
			if !strings.HasPrefix(r.stderr, "agentauth do: ") {
				t.Errorf("stderr %q does not name the command", r.stderr)
			}
		})
	}

	// A rejection still prints the body, then fails with one line.
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{"sk-other-key-0000"}})
	r := runCmd(t, "", "do", "--api-key", doAPIKey, srv.URL()+"/v1/responses")
	if r.code != exitFailure || !strings.Contains(r.stdout, "unknown_bearer") || r.stderr != "agentauth do: server answered 401 Unauthorized (using the API key from --api-key)\n" {
		t.Errorf("rejected request: %+v", r)
	}
	assertNoSecret(t, r, doAPIKey)
}

func TestDoProvisioningUnavailableFallsBackToBearer(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AccessTokens: []string{doToken}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	// Agent registration cannot connect (temporary, retried 3 times): the
	// login falls back to Bearer and do says so, with the cause.
	r := runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-fb", "--use-agent-identity", "--authapi", dead, srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer ||
		!strings.HasPrefix(r.stderr, "agentauth do: warning: agent provisioning unavailable; using Bearer during the cooldown: ") ||
		!strings.HasSuffix(r.stderr, "connection refused\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("fallback: %+v", r)
	}
	assertNoSecret(t, r, doToken)
}

func TestDoVerboseShowsFailedHopsAndAFallbackThatFails(t *testing.T) {
	// The resource server knows no token: the Bearer fallback is refused.
	srv := newTestServer(t, identitytest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := runCmd(t, "", "do", "-v", "--access-token", doToken, "--account-id", "acct-fb", "--use-agent-identity", "--authapi", dead, srv.URL()+"/v1/responses")
	if r.code != exitFailure {
		t.Fatalf("exit %d, want 1: %+v", r.code, r)
	}
	// Every attempt of the retried registration, with its error.
	if n := strings.Count(r.stderr, "< no response from POST "+dead+"/v1/agent/register: "); n != 3 {
		t.Errorf("%d failed registration hops shown, want 3:\n%s", n, r.stderr)
	}
	if n := strings.Count(r.stderr, "> POST "+dead+"/v1/agent/register\n"); n != 3 {
		t.Errorf("%d registration attempts shown, want 3:\n%s", n, r.stderr)
	}
	// The fallback is announced with its cause although the request then
	// fails, and the failure is the last line.
	warn := strings.Index(r.stderr, "agentauth do: warning: agent provisioning unavailable; using Bearer during the cooldown: ")
	if warn < 0 || !strings.HasSuffix(r.stderr, "agentauth do: server answered 401 Unauthorized (using the ChatGPT login from --access-token)\n") {
		t.Errorf("stderr lacks the fallback warning or the final error:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "> Authorization: Bearer [REDACTED]\n") || !strings.Contains(r.stderr, "< HTTP/1.1 401 Unauthorized\n") {
		t.Errorf("-v lacks the Bearer hop:\n%s", r.stderr)
	}
	assertNoSecret(t, r, doToken)
}

func TestDoLoopbackURLRegistersAtItsOwnOrigin(t *testing.T) {
	t.Setenv(identity.EnvAuthAPIBase, "")
	srv := newTestServer(t, identitytest.Options{AccessTokens: []string{doToken}})
	// No --authapi: a loopback URL is its own AuthAPI.
	r := runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-lo", "--use-agent-identity", "--thread", "th-lo", srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || r.stderr != "" || e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != "th-lo" {
		t.Fatalf("do without --authapi: %+v", r)
	}
	if st := srv.Stats(); st.AgentRegistrations != 1 || st.ThreadTaskRegistrations != 1 {
		t.Errorf("registrations did not reach the URL's server: %+v", st)
	}
	// The environment override still decides where registrations go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv(identity.EnvAuthAPIBase, dead)
	r = runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-lo", "--use-agent-identity", srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer || !strings.Contains(r.stderr, dead+"/v1/agent/register") {
		t.Fatalf("with $%s: %+v", identity.EnvAuthAPIBase, r)
	}
}

func TestDoRegistrationErrorIsWordedForPeople(t *testing.T) {
	t.Setenv(identity.EnvAuthAPIBase, "")
	srv := newTestServer(t, identitytest.Options{})
	rec, _, err := srv.NewAgentIdentity("", identitytest.Login{AccountID: "acct-w"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"agent_runtime_id": rec.AgentRuntimeID, "agent_private_key": rec.AgentPrivateKey.Reveal()})
	path := writeFile(t, string(data))
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: 403})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "agentauth do: registering the process task (the task of requests without a thread key) at " + srv.URL() + " failed: the server answered 403 Forbidden"},
		{[]string{"--thread", "th-w"}, "agentauth do: registering the thread's task at " + srv.URL() + " failed: the server answered 403 Forbidden"},
	} {
		r := runCmd(t, "", append(append([]string{"do", "--record", path}, tc.args...), srv.URL()+"/v1/responses")...)
		assertOneLineError(t, r, exitFailure, rec.AgentPrivateKey.Reveal())
		if !strings.HasPrefix(r.stderr, tc.want) || strings.Contains(r.stderr, `key ""`) || strings.Contains(r.stderr, "resolver:") {
			t.Errorf("stderr %q, want it to start with %q", r.stderr, tc.want)
		}
	}
}

func TestDoSendsCredentialsOnlyToFirstPartyOrigins(t *testing.T) {
	t.Setenv(identity.EnvAuthAPIBase, "")
	parse := func(args ...string) (*doRequest, error) {
		set := map[string]bool{"api-key": true}
		f := doFlags{source: "--api-key", apiKey: doAPIKey, timeout: time.Second}
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "--allow-origin" {
				f.origins = append(f.origins, args[i+1])
			}
		}
		return parseDoRequest(args[len(args)-1:], set, f, nil)
	}
	for _, u := range []string{"https://chatgpt.com/backend-api/wham/tasks", "https://api.openai.com/v1/responses", "http://127.0.0.1:9/v1/x", "http://localhost:9/"} {
		if _, err := parse(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	_, err := parse("https://example.com/")
	if err == nil || !strings.Contains(err.Error(), "https://example.com is not a first-party origin") || !strings.Contains(err.Error(), "--allow-origin https://example.com") {
		t.Errorf("https://example.com: %v", err)
	}
	r, err := parse("--allow-origin", "https://example.com", "https://example.com/v1/x")
	if err != nil || !slices.Contains(r.origins, "https://example.com") || r.insecure {
		t.Errorf("--allow-origin: %+v %v", r, err)
	}
	for _, bad := range []string{"http://example.com", "https://example.com/path", "example.com"} {
		if _, err := parse("--allow-origin", bad, "https://example.com/"); err == nil {
			t.Errorf("--allow-origin %s accepted", bad)
		}
	}
	// In process: refused with exit 2 before anything is sent.
	res := runCmd(t, "", "do", "--api-key", doAPIKey, "https://example.com/")
	assertOneLineError(t, res, exitUsage, doAPIKey)
}

func TestDoSecretsFromStdinAndEnvironment(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}, AccessTokens: []string{doToken}})
	target := srv.URL() + "/v1/responses"
	t.Setenv(envDoAPIKey, "")
	t.Setenv(envDoAccessToken, "")
	for _, tc := range []struct {
		name, stdin string
		env         [2]string
		args        []string
		wantAuth    string
	}{
		{"api key on stdin", doAPIKey + "\n", [2]string{}, []string{"--api-key-stdin"}, "Bearer " + doAPIKey},
		{"access token on stdin", doToken + "\r\n", [2]string{}, []string{"--access-token-stdin", "--account-id", "acct-s"}, "Bearer " + doToken},
		{"api key in env", "", [2]string{envDoAPIKey, doAPIKey}, nil, "Bearer " + doAPIKey},
		{"access token in env", "", [2]string{envDoAccessToken, doToken}, []string{"--account-id", "acct-s"}, "Bearer " + doToken},
		{"a flag wins over env", "", [2]string{envDoAccessToken, "at-other-0000000000"}, []string{"--api-key", doAPIKey}, "Bearer " + doAPIKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			r := runCmd(t, tc.stdin, append(append([]string{"do"}, tc.args...), target)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("%+v", r)
			}
			if got := lastResource(t, srv).Header.Get("Authorization"); got != tc.wantAuth {
				t.Errorf("Authorization sent has the wrong credential")
			}
			assertNoSecret(t, r, doAPIKey, doToken)
		})
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
	}{
		{"empty stdin", "", []string{"--api-key-stdin"}},
		{"two stdin readers", doAPIKey, []string{"--api-key-stdin", "-d", "@-"}},
		{"stdin and a flag", doAPIKey, []string{"--api-key-stdin", "--api-key", doAPIKey}},
		{"token on stdin without account", doToken, []string{"--access-token-stdin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.stdin, append(append([]string{"do"}, tc.args...), target)...)
			assertOneLineError(t, r, exitUsage, doAPIKey, doToken)
		})
	}
	t.Setenv(envDoAPIKey, doAPIKey)
	t.Setenv(envDoAccessToken, doToken)
	assertOneLineError(t, runCmd(t, "", "do", target), exitUsage, doAPIKey, doToken)
}

func TestDoBadFlags(t *testing.T) {
	const u = "http://127.0.0.1:1/v1/responses"
	cases := [][]string{
		{"--api-key", doAPIKey, "--access-token", doToken, "--account-id", "a", u},
		{"--codex-home", "/tmp", "--api-key", doAPIKey, u},
		{"--record", "-", "--api-key", doAPIKey, u},
		{"--account-id", "a", u},
		{"--fedramp", "--api-key", doAPIKey, u},
		{"--access-token", doToken, u},
		{"--access-token", "", "--account-id", "a", u},
		{"--access-token", doToken + "\n", "--account-id", "a", u},
		{"--access-token", doToken, "--account-id", "a\x01", u},
		{"--api-key", doAPIKey, "--insecure-unverified-jwt", u},
		{"--api-key", doAPIKey, "--use-agent-identity", u},
		{"--api-key", doAPIKey},
		{"--api-key", doAPIKey, u, u},
		{"--api-key", doAPIKey, "http://example.com/v1/responses"},
		{"--api-key", doAPIKey, "ftp://127.0.0.1/x"},
		{"--api-key", doAPIKey, "/v1/responses"},
		{"--api-key", doAPIKey, "http://user:" + doToken + "@127.0.0.1:1/"},
		{"--api-key", doAPIKey, "--authapi", "http://auth.example.com", u},
		{"--api-key", doAPIKey, "--authapi", "http://127.0.0.1:1/?q=1", u},
		{"--api-key", doAPIKey, "--thread", "a\nb", u},
		{"--api-key", doAPIKey, "--thread", "", u},
		{"--api-key", doAPIKey, "-H", "NoColon", u},
		{"--api-key", doAPIKey, "-H", "Bad Name: v", u},
		{"--api-key", doAPIKey, "-H", "X-Token: " + doToken + "\r\nEvil: 1", u},
		{"--api-key", doAPIKey, "-X", "GE T", u},
		{"--api-key", doAPIKey, "--timeout", "0s", u},
		{"--api-key", doAPIKey, "-d", "@" + filepath.Join(t.TempDir(), "missing"), u},
		{"--record", filepath.Join(t.TempDir(), "missing"), u},
		{"--record", writeFile(t, "not json"), u},
		{"--record", "-", "-d", "@-", u},
		{"--nope", u},
		{"--api-key"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCmd(t, "", append([]string{"do"}, args...)...)
			assertOneLineError(t, r, exitUsage, doAPIKey, doToken)
			assertNoSecret(t, r, doAPIKey, doToken)
			if !strings.HasPrefix(r.stderr, "agentauth do: ") {
				t.Errorf("stderr %q does not name the command", r.stderr)
			}
		})
	}
}

func TestDoDataFromStdinAndDoubleDash(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}})
	r := runCmd(t, `{"from":"stdin"}`, "do", "--api-key", doAPIKey, "-d", "@-", "-H", "Content-Type: text/plain", "--", srv.URL()+"/v1/stdin")
	q := lastResource(t, srv)
	if r.code != 0 || q.Method != "POST" || q.Path != "/v1/stdin" || string(q.Body) != `{"from":"stdin"}` || q.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("do -d @-: %+v request %v", r, q)
	}
}

func TestDoExplainsARejectionAfterLeavingTheFirstPartyOrigins(t *testing.T) {
	// The redirect target is another loopback origin: not first-party, so
	// it gets no credential and answers 401. do says why.
	other := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}})
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL()+"/v1/responses", http.StatusFound)
	}))
	defer first.Close()
	r := runCmd(t, "", "do", "--api-key", doAPIKey, first.URL+"/start")
	want := "agentauth do: server answered 401 Unauthorized (1 hop(s) went to an origin that is not first-party and carried no credential; see --allow-origin) (using the API key from --api-key)\n"
	if r.code != exitFailure || r.stderr != want {
		t.Errorf("exit %d stderr %q, want %q", r.code, r.stderr, want)
	}
	// Named with --allow-origin, the hop carries the key and succeeds.
	r = runCmd(t, "", "do", "--api-key", doAPIKey, "--allow-origin", other.URL(), first.URL+"/start")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer {
		t.Errorf("with --allow-origin: %+v", r)
	}
	assertNoSecret(t, r, doAPIKey)
}

// The Codex home's flag comes from the library's sources, in its order:
// --use-agent-identity, then $AGENTAUTH_USE_AGENT_IDENTITY, then
// config.toml; an invalid value is an error, not "off".
func TestDoCodexHomeTakesTheFlagFromEnvironmentAndConfig(t *testing.T) {
	clearCodexEnv(t)
	srv := newTestServer(t, identitytest.Options{})
	t.Setenv(credentials.EnvRefreshTokenURL, srv.TokenURL())
	home := t.TempDir()
	writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-flag", UserID: "user-flag"}, nil)
	mode := func(t *testing.T, extra ...string) string {
		t.Helper()
		args := append([]string{"do", "--codex-home", home}, extra...)
		r := runCmd(t, "", append(args, srv.URL()+"/v1/responses")...)
		if r.code != 0 {
			t.Fatalf("%v: %+v", extra, r)
		}
		return decodeEcho(t, r.stdout).Mode
	}

	if got := mode(t); got != identitytest.ModeBearer {
		t.Errorf("no setting: mode %q, want bearer", got)
	}
	t.Setenv("AGENTAUTH_USE_AGENT_IDENTITY", "on")
	if got := mode(t); got != identitytest.ModeAssertion {
		t.Errorf("$%s=on: mode %q, want assertion", "AGENTAUTH_USE_AGENT_IDENTITY", got)
	}
	if got := mode(t, "--use-agent-identity=false"); got != identitytest.ModeBearer {
		t.Errorf("--use-agent-identity=false over the environment: mode %q, want bearer", got)
	}
	t.Setenv("AGENTAUTH_USE_AGENT_IDENTITY", "")
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte("[features]\nuse_agent_identity = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mode(t); got != identitytest.ModeAssertion {
		t.Errorf("config.toml on: mode %q, want assertion", got)
	}

	t.Setenv("AGENTAUTH_USE_AGENT_IDENTITY", "maybe")
	r := runCmd(t, "", "do", "--codex-home", home, srv.URL()+"/v1/responses")
	assertOneLineError(t, r, exitFailure)
	if !strings.Contains(r.stderr, "AGENTAUTH_USE_AGENT_IDENTITY") || !strings.Contains(r.stderr, "not a boolean") {
		t.Errorf("invalid $%s: %q", "AGENTAUTH_USE_AGENT_IDENTITY", r.stderr)
	}
	if n := srv.Stats().AgentRegistrations; n != 1 {
		t.Errorf("%d agent registrations, want 1 (the identity provisioned first is reused)", n)
	}
}

// Tokens an outside host manages are never provisioned, as in the library;
// asking for it explicitly gets one note and the request goes as Bearer.
func TestDoCodexHomeExternallyManagedTokensStayBearer(t *testing.T) {
	clearCodexEnv(t)
	srv := newTestServer(t, identitytest.Options{})
	home := t.TempDir()
	login := writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-ext", UserID: "user-ext"}, func(doc map[string]any) {
		doc["auth_mode"] = "chatgptAuthTokens"
	})
	r := runCmd(t, "", "do", "--codex-home", home, "--use-agent-identity", srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer {
		t.Fatalf("externally managed tokens with --use-agent-identity: %+v", r)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "chatgptAuthTokens") || !strings.Contains(r.stderr, "stays Bearer") {
		t.Errorf("stderr %q, want one note that the tokens stay Bearer", r.stderr)
	}
	assertNoSecret(t, r, login.AccessToken, login.RefreshToken)
	// The flag from the environment follows the same rule, silently.
	t.Setenv("AGENTAUTH_USE_AGENT_IDENTITY", "1")
	r = runCmd(t, "", "do", "--codex-home", home, srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer || r.stderr != "" {
		t.Fatalf("externally managed tokens with the flag from the environment: %+v", r)
	}
	if st := srv.Stats(); st.AgentRegistrations != 0 || st.TokenRefreshes != 0 {
		t.Errorf("stats %+v: want no agent registration and no refresh", st)
	}
}
