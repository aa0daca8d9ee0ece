package identitytest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/internal/identity"
)

func decodeEcho(t *testing.T, r response) Echo {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d body %s, want 200", r.status, r.body)
	}
	var e Echo
	dec := json.NewDecoder(bytes.NewReader(withoutOpenAIMembers(t, r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("echo %s: %v", r.body, err)
	}
	return e
}

func TestResourceAcceptsValidAssertion(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	task := newTask(t, c, s, k, "agent-123", "thread-1", t0)

	hdr := map[string]string{
		"Authorization":      sign(t, k, "agent-123", task, t0),
		"ChatGPT-Account-ID": "acct-9",
		"X-OpenAI-Fedramp":   "true",
	}
	r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", hdr, []byte(`{"input":"hi"}`))
	want := Echo{Mode: ModeAssertion, AgentRuntimeID: "agent-123", TaskID: task, ExternalTaskRef: "thread-1",
		AccountID: "acct-9", FedRAMP: true, Path: "/v1/responses"}
	if diff := cmp.Diff(want, decodeEcho(t, r)); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
	if strings.Contains(string(r.body), hdr["Authorization"][len("AgentAssertion "):]) {
		t.Error("echo contains the assertion")
	}

	// Any other path under /v1/ and any method is a protected resource;
	// within the skew the same header is still good.
	clock.Add(4 * time.Minute)
	r = do(t, c, http.MethodGet, s.URL()+"/v1/models/x", map[string]string{"Authorization": hdr["Authorization"]}, nil)
	if e := decodeEcho(t, r); e.Path != "/v1/models/x" || e.Mode != ModeAssertion || e.AccountID != "" || e.FedRAMP {
		t.Errorf("echo %+v", e)
	}

	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("Requests() has %d entries, want 2", len(reqs))
	}
	if got := reqs[0].Header.Get("Authorization"); got != hdr["Authorization"] {
		t.Error("Requests() does not hold the exact Authorization header sent")
	}
	if reqs[0].Method != http.MethodPost || string(reqs[0].Body) != `{"input":"hi"}` || reqs[0].Status != 200 || reqs[0].Echo != want {
		t.Errorf("Requests()[0] = %+v body %q", reqs[0], reqs[0].Body)
	}
	if st := s.Stats(); st.RequestsByMode[ModeAssertion] != 2 || st.Rejections != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestResourceBearer(t *testing.T) {
	s, _ := newTestServer(t, Options{AccessTokens: []string{"tok-access"}, APIKeys: []string{"sk-api"}})
	c := newClient(t)
	for _, tok := range []string{"tok-access", "sk-api"} {
		r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": "Bearer " + tok, "ChatGPT-Account-ID": "acct"}, nil)
		want := Echo{Mode: ModeBearer, AccountID: "acct", Path: "/v1/responses"}
		if diff := cmp.Diff(want, decodeEcho(t, r)); diff != "" {
			t.Errorf("%s: echo (-want +got):\n%s", tok, diff)
		}
		if strings.Contains(string(r.body), tok) {
			t.Errorf("echo contains the token")
		}
	}
	if st := s.Stats(); st.RequestsByMode[ModeBearer] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestResourceAllowAnonymous(t *testing.T) {
	s, _ := newTestServer(t, Options{AllowAnonymous: true})
	c := newClient(t)
	r := do(t, c, http.MethodGet, s.URL()+"/v1/anything", nil, nil)
	if e := decodeEcho(t, r); e.Mode != ModeNone {
		t.Errorf("echo %+v", e)
	}
	// A bad credential is still rejected.
	if r := do(t, c, http.MethodGet, s.URL()+"/v1/anything", map[string]string{"Authorization": "Bearer x"}, nil); r.status != 401 {
		t.Errorf("bad bearer with AllowAnonymous: %d", r.status)
	}
	if st := s.Stats(); st.RequestsByMode[ModeNone] != 1 || st.Rejections != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestResourceRejections(t *testing.T) {
	s, clock := newTestServer(t, Options{AccessTokens: []string{"tok-access"}})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	k2 := addRuntime(t, s, "agent-456", 8)
	task := newTask(t, c, s, k, "agent-123", "", t0)
	otherTask := newTask(t, c, s, k2, "agent-456", "", t0)
	revoked := newTask(t, c, s, k, "agent-123", "thread-r", t0)
	if !s.RevokeTask(revoked) || s.RevokeTask("task-nope") {
		t.Fatal("RevokeTask reports wrongly whether the task exists")
	}
	// A fixed clock 1 s later: every assertion below is fresh unless noted.
	clock.Add(time.Second)

	good := sign(t, k, "agent-123", task, t0)
	token := strings.TrimPrefix(good, "AgentAssertion ")
	env, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	var a identity.Assertion
	if err := json.Unmarshal(env, &a); err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(*identity.Assertion)) string {
		b := a
		f(&b)
		return "AgentAssertion " + base64.RawURLEncoding.EncodeToString(mustJSON(t, b))
	}

	cases := []struct {
		name, auth, reason string
	}{
		{"no authorization", "", "missing_authorization"},
		{"bad signature", tamper(func(a *identity.Assertion) {
			a.Signature = identity.Secret(base64.StdEncoding.EncodeToString(k.Sign([]byte("agent-123:" + task + ":2026-04-23T00:00:01Z"))))
		}), "bad_signature"},
		{"signed by another key", sign(t, k2, "agent-123", task, t0), "bad_signature"},
		{"another runtime's task", sign(t, k, "agent-123", otherTask, t0), "task_runtime_mismatch"},
		{"unknown task", sign(t, k, "agent-123", "task-unknown", t0), "unknown_task"},
		{"revoked task", sign(t, k, "agent-123", revoked, t0), "task_revoked"},
		{"unknown runtime", sign(t, k, "agent-999", task, t0), "unknown_runtime"},
		{"stale timestamp", sign(t, k, "agent-123", task, t0.Add(-5*time.Minute)), "timestamp_skew"},
		{"future timestamp", sign(t, k, "agent-123", task, t0.Add(5*time.Minute+2*time.Second)), "timestamp_skew"},
		{"padded base64", "AgentAssertion " + base64.URLEncoding.EncodeToString(paddable(env)), "malformed_assertion"},
		{"padding appended", good + "==", "malformed_assertion"},
		{"not json", "AgentAssertion " + base64.RawURLEncoding.EncodeToString([]byte("nope")), "malformed_assertion"},
		{"extra member", "AgentAssertion " + base64.RawURLEncoding.EncodeToString(bytes.Replace(env, []byte("{"), []byte(`{"x":"y",`), 1)), "malformed_assertion"},
		{"fractional timestamp", tamper(func(a *identity.Assertion) { a.Timestamp = "2026-04-23T00:00:00.000Z" }), "malformed_assertion"},
		{"empty token", "AgentAssertion ", "unsupported_scheme"},
		{"scheme only", "AgentAssertion", "unsupported_scheme"},
		{"wrong scheme", "Agentassertion " + token, "unsupported_scheme"},
		{"assertion as bearer", "Bearer " + token, "unknown_bearer"},
		{"unknown bearer", "Bearer nope", "unknown_bearer"},
		// net/http trims the trailing space, so the server sees "Bearer".
		{"empty bearer", "Bearer ", "unsupported_scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", hdr, nil)
			if r.status != http.StatusUnauthorized || errorReason(t, r) != tc.reason {
				t.Errorf("got %d %s, want 401 %s", r.status, r.body, tc.reason)
			}
			if tc.auth != "" && len(tc.auth) > len("AgentAssertion ") && strings.Contains(string(r.body), strings.TrimPrefix(strings.TrimPrefix(tc.auth, "AgentAssertion "), "Bearer ")) {
				t.Errorf("401 body quotes the credential: %s", r.body)
			}
		})
	}

	// Two Authorization headers are malformed even when one is valid.
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/responses", nil)
	req.Header.Add("Authorization", good)
	req.Header.Add("Authorization", "Bearer tok-access")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("two Authorization headers: %d, want 401", resp.StatusCode)
	}

	// The good assertion is accepted; revoking its task turns it away.
	if r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": good}, nil); r.status != 200 {
		t.Fatalf("good assertion: %d %s", r.status, r.body)
	}
	s.RevokeTask(task)
	if r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": good}, nil); r.status != 401 || errorReason(t, r) != "task_revoked" {
		t.Fatalf("revoked: %d %s", r.status, r.body)
	}
	if !s.Tasks()[0].Revoked {
		t.Error("Tasks() does not show the revocation")
	}

	st := s.Stats()
	if want := len(cases) + 2; st.Rejections != want || st.RequestsByMode[ModeAssertion] != 1 {
		t.Errorf("Rejections %d (want %d), by mode %v", st.Rejections, want, st.RequestsByMode)
	}
	reqs := s.Requests()
	if len(reqs) != len(cases)+3 {
		t.Fatalf("Requests() = %d entries", len(reqs))
	}
	for _, r := range reqs[:len(cases)] {
		if r.Status != 401 || r.Reason == "" || r.Echo.Mode != ModeNone {
			t.Errorf("rejected request recorded as %v", r)
		}
	}
}

// paddable appends JSON whitespace to env until its base64 form needs
// padding.
func paddable(env []byte) []byte {
	out := append([]byte(nil), env...)
	for len(out)%3 == 0 {
		out = append(out, ' ')
	}
	return out
}

func TestResourceRejectsBadFedRAMPHeader(t *testing.T) {
	s, _ := newTestServer(t, Options{AccessTokens: []string{"tok"}})
	c := newClient(t)
	r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": "Bearer tok", "X-OpenAI-Fedramp": "TRUE"}, nil)
	if r.status != http.StatusBadRequest || errorReason(t, r) != "malformed_fedramp_header" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

func TestSeenRequestNeverPrintsCredentials(t *testing.T) {
	s, _ := newTestServer(t, Options{APIKeys: []string{"sk-secret-value"}})
	c := newClient(t)
	do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": "Bearer sk-secret-value"}, nil)
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer sk-secret-value" {
		t.Fatalf("Requests() = %d entries", len(reqs))
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("seen", "req", reqs[0], "all", reqs)
	outs := []string{logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, reqs[0]), fmt.Sprintf(verb, reqs))
	}
	for _, out := range outs {
		if strings.Contains(out, "sk-secret-value") {
			t.Errorf("output leaks the API key: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(reqs[0]), "Bearer [REDACTED]") {
		t.Errorf("String() = %s, want the redacted scheme", reqs[0])
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	s, _ := newTestServer(t, Options{AllowAnonymous: true, RequestLog: 3})
	c := newClient(t)
	for i := range 5 {
		do(t, c, http.MethodGet, fmt.Sprintf("%s/v1/r%d", s.URL(), i), nil, nil)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Path != "/v1/r2" || reqs[2].Path != "/v1/r4" {
		t.Fatalf("Requests() = %v", reqs)
	}
	s.ResetStats()
	if len(s.Requests()) != 0 || s.Stats().RequestsByMode[ModeNone] != 0 {
		t.Fatal("ResetStats kept state")
	}
}

// TestConcurrentCountersExact drives registrations and resources from many
// goroutines; the race detector checks the locking and the counters must
// come out exact.
func TestConcurrentCountersExact(t *testing.T) {
	s, _ := newTestServer(t, Options{EncryptTaskIDs: false})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	const workers, perWorker = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			ref := fmt.Sprintf("thread-%d", w)
			task := newTask(t, c, s, k, "agent-123", ref, t0)
			for range perWorker {
				r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": sign(t, k, "agent-123", task, t0)}, nil)
				if r.status != 200 {
					errs <- fmt.Errorf("%s: %d", ref, r.status)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := s.Stats()
	if st.ThreadTaskRegistrations != workers || len(st.RegistrationsByExternalRef) != workers ||
		st.RequestsByMode[ModeAssertion] != workers*perWorker || st.RegistrationsByRuntime["agent-123"] != workers {
		t.Errorf("stats %+v", st)
	}
	if len(s.Requests()) != workers*perWorker {
		t.Errorf("Requests() = %d", len(s.Requests()))
	}
}

func TestUnknownPath(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := newClient(t)
	if r := do(t, c, http.MethodGet, s.URL()+"/other", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("got %d", r.status)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		path  string
		route Route
		rid   string
	}{
		{"/v1/agent/register", RouteAgentRegister, ""},
		{"/api/accounts/v1/agent/register", RouteAgentRegister, ""},
		{"/v1/agent/rt-1/task/register", RouteTaskRegister, "rt-1"},
		{"/v1/agent//task/register", RouteResource, ""},
		{"/v1/agent/a/b/task/register", RouteResource, ""},
		{"/v1/responses", RouteResource, ""},
		{"/v1/agent/rt-1", RouteResource, ""},
		{"/agent-identities/jwks", RouteJWKS, ""},
		{"/wham/agent-identities/jwks", RouteJWKS, ""},
		{"/backend-api/wham/agent-identities/jwks", RouteJWKS, ""},
		{"/", "", ""},
		{"/v1", "", ""},
	}
	for _, tc := range cases {
		route, rid := classify(tc.path)
		if route != tc.route || rid != tc.rid {
			t.Errorf("classify(%q) = %q, %q; want %q, %q", tc.path, route, rid, tc.route, tc.rid)
		}
	}
}

func TestServerAndOptionsNeverPrintTokens(t *testing.T) {
	opts := Options{AccessTokens: []string{"tok-secret-access"}, APIKeys: []string{"sk-secret-api"}}
	s, _ := newTestServer(t, opts)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "server", s, "opts", opts)
	outs := []string{logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, opts))
	}
	for _, out := range outs {
		if strings.Contains(out, "secret") {
			t.Errorf("output leaks a token: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(s), s.URL()) {
		t.Errorf("String() = %s, want the URL", s)
	}
}
