package identitytest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/internal/identity"
)

func agentBody(t *testing.T, pub string) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"abom":             map[string]string{"agent_version": "1.0", "agent_harness_id": "codex-cli", "running_location": "test-linux"},
		"agent_public_key": pub,
		"capabilities":     []string{"responsesapi"},
		"ttl":              nil,
	})
}

func TestAgentRegistration(t *testing.T) {
	s, _ := newTestServer(t, Options{AccessTokens: []string{"tok-access"}, APIKeys: []string{"sk-api"}})
	c := newClient(t)
	k := testKey(t, 1)
	url := s.URL() + "/v1/agent/register"

	r := do(t, c, http.MethodPost, url, map[string]string{
		"Authorization":      "Bearer tok-access",
		"ChatGPT-Account-ID": "acct-1",
		"X-OpenAI-Fedramp":   "true",
	}, agentBody(t, k.SSHPublicKey()))
	if r.status != http.StatusOK {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	var out map[string]string
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	rid := out["agent_runtime_id"]
	if !strings.HasPrefix(rid, "rt-") || len(out) != 1 {
		t.Fatalf("response %s: want exactly {agent_runtime_id: rt-...}", r.body)
	}
	want := []Runtime{{
		RuntimeID: rid, PublicKeySSH: k.SSHPublicKey(), AccountID: "acct-1", FedRAMP: true,
		Capabilities: []string{"responsesapi"},
		AgentVersion: "1.0", AgentHarnessID: "codex-cli", RunningLocation: "test-linux",
	}}
	if diff := cmp.Diff(want, s.Runtimes()); diff != "" {
		t.Errorf("Runtimes() (-want +got):\n%s", diff)
	}
	// The registered runtime can register tasks with its key.
	newTask(t, c, s, k, rid, "", t0)

	bad := []struct {
		name   string
		hdr    map[string]string
		body   []byte
		status int
		reason string
	}{
		{"no authorization", nil, agentBody(t, k.SSHPublicKey()), 401, "missing_authorization"},
		{"unknown token", map[string]string{"Authorization": "Bearer nope"}, agentBody(t, k.SSHPublicKey()), 401, "unknown_bearer"},
		{"api key is not a login", map[string]string{"Authorization": "Bearer sk-api"}, agentBody(t, k.SSHPublicKey()), 401, "unknown_bearer"},
		{"wrong scheme", map[string]string{"Authorization": "Basic tok-access"}, agentBody(t, k.SSHPublicKey()), 401, "unsupported_scheme"},
		{"malformed json", map[string]string{"Authorization": "Bearer tok-access"}, []byte(`{"abom":`), 400, "malformed_body"},
		{"bad key", map[string]string{"Authorization": "Bearer tok-access"}, agentBody(t, "ssh-ed25519 AAAA"), 400, "invalid_public_key"},
		{"unknown field", map[string]string{"Authorization": "Bearer tok-access"},
			[]byte(`{"abom":{"agent_version":"1","agent_harness_id":"h","running_location":"l"},"agent_public_key":"` + k.SSHPublicKey() + `","capabilities":[],"name":"x"}`), 400, "unknown_field"},
		{"missing capabilities", map[string]string{"Authorization": "Bearer tok-access"},
			[]byte(`{"abom":{"agent_version":"1","agent_harness_id":"h","running_location":"l"},"agent_public_key":"` + k.SSHPublicKey() + `"}`), 400, "missing_capabilities"},
		{"capabilities not array", map[string]string{"Authorization": "Bearer tok-access"},
			[]byte(`{"abom":{"agent_version":"1","agent_harness_id":"h","running_location":"l"},"agent_public_key":"` + k.SSHPublicKey() + `","capabilities":"responsesapi"}`), 400, "malformed_capabilities"},
		{"bad fedramp header", map[string]string{"Authorization": "Bearer tok-access", "X-OpenAI-Fedramp": "false"}, agentBody(t, k.SSHPublicKey()), 400, "malformed_fedramp_header"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, http.MethodPost, url, tc.hdr, tc.body)
			if r.status != tc.status || errorReason(t, r) != tc.reason {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.reason)
			}
			if strings.Contains(string(r.body), "tok-access") || strings.Contains(string(r.body), "sk-api") {
				t.Errorf("error body echoes a credential: %s", r.body)
			}
		})
	}
	st := s.Stats()
	if st.AgentRegistrations != 1 || st.Rejections != len(bad) || len(s.Runtimes()) != 1 {
		t.Errorf("stats %+v runtimes %d: want 1 registration and %d rejections", st, len(s.Runtimes()), len(bad))
	}

	if r := do(t, c, http.MethodGet, url, map[string]string{"Authorization": "Bearer tok-access"}, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET register: %d, want 405", r.status)
	}
}

func TestAgentRegistrationAcceptAnyBearer(t *testing.T) {
	s, _ := newTestServer(t, Options{AcceptAnyBearerForAgentRegistration: true})
	c := newClient(t)
	k := testKey(t, 2)
	r := do(t, c, http.MethodPost, s.URL()+"/v1/agent/register", map[string]string{"Authorization": "Bearer anything"}, agentBody(t, k.SSHPublicKey()))
	if r.status != http.StatusOK {
		t.Fatalf("any bearer: %d %s", r.status, r.body)
	}
	r = do(t, c, http.MethodPost, s.URL()+"/v1/agent/register", nil, agentBody(t, k.SSHPublicKey()))
	if r.status != http.StatusUnauthorized {
		t.Fatalf("no bearer: %d, want 401", r.status)
	}
	// Accepting any token at registration does not open the resources.
	r = do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": "Bearer anything"}, nil)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("resource with arbitrary bearer: %d, want 401", r.status)
	}
}

func TestTaskRegistration(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	other := testKey(t, 8)
	url := s.URL() + "/v1/agent/agent-123/task/register"
	sig, ts := identity.RegistrationSignature(k, "agent-123", t0)

	process := newTask(t, c, s, k, "agent-123", "", t0)
	thread := newTask(t, c, s, k, "agent-123", "thread-a", t0)
	// The prefix of an AuthAPI base such as /api/accounts is tolerated.
	r := do(t, c, http.MethodPost, s.URL()+"/api/accounts/v1/agent/agent-123/task/register", nil,
		mustJSON(t, map[string]string{"timestamp": ts, "signature": sig, "external_task_ref": "thread-b"}))
	if r.status != http.StatusOK {
		t.Fatalf("prefixed registration: %d %s", r.status, r.body)
	}

	otherSig, _ := identity.RegistrationSignature(other, "agent-123", t0)
	wrongMsgSig, _ := identity.RegistrationSignature(k, "agent-999", t0)
	staleSig, staleTS := identity.RegistrationSignature(k, "agent-123", t0.Add(-6*time.Minute))
	futureSig, futureTS := identity.RegistrationSignature(k, "agent-123", t0.Add(6*time.Minute))
	edgeSig, edgeTS := identity.RegistrationSignature(k, "agent-123", t0.Add(-5*time.Minute))

	// Exactly MaxSkew old is still accepted.
	r = do(t, c, http.MethodPost, url, nil, mustJSON(t, map[string]string{"timestamp": edgeTS, "signature": edgeSig}))
	if r.status != http.StatusOK {
		t.Fatalf("timestamp at the skew limit: %d %s", r.status, r.body)
	}

	bad := []struct {
		name   string
		url    string
		hdr    map[string]string
		body   string
		status int
		reason string
	}{
		{"unsigned", url, nil, `{"timestamp":"` + ts + `"}`, 401, "unsigned"},
		{"empty signature", url, nil, `{"timestamp":"` + ts + `","signature":""}`, 401, "unsigned"},
		{"signature over another message", url, nil, `{"timestamp":"` + ts + `","signature":"` + wrongMsgSig + `"}`, 401, "bad_signature"},
		{"signature by another key", url, nil, `{"timestamp":"` + ts + `","signature":"` + otherSig + `"}`, 401, "bad_signature"},
		{"signature not base64", url, nil, `{"timestamp":"` + ts + `","signature":"!!"}`, 401, "bad_signature"},
		{"timestamp not signed", url, nil, `{"timestamp":"2026-04-23T00:00:01Z","signature":"` + sig + `"}`, 401, "bad_signature"},
		{"stale timestamp", url, nil, `{"timestamp":"` + staleTS + `","signature":"` + staleSig + `"}`, 401, "timestamp_skew"},
		{"future timestamp", url, nil, `{"timestamp":"` + futureTS + `","signature":"` + futureSig + `"}`, 401, "timestamp_skew"},
		{"fractional timestamp", url, nil, `{"timestamp":"2026-04-23T00:00:00.5Z","signature":"` + sig + `"}`, 401, "malformed_timestamp"},
		{"missing timestamp", url, nil, `{"signature":"` + sig + `"}`, 401, "malformed_timestamp"},
		{"malformed json", url, nil, `{"timestamp":`, 400, "malformed_body"},
		{"not an object", url, nil, `["x"]`, 400, "malformed_body"},
		{"null body", url, nil, `null`, 400, "malformed_body"},
		{"trailing data", url, nil, `{"timestamp":"` + ts + `","signature":"` + sig + `"} {}`, 400, "malformed_body"},
		{"timestamp not a string", url, nil, `{"timestamp":1,"signature":"` + sig + `"}`, 400, "malformed_timestamp"},
		{"null external ref", url, nil, `{"timestamp":"` + ts + `","signature":"` + sig + `","external_task_ref":null}`, 400, "malformed_external_task_ref"},
		{"empty external ref", url, nil, `{"timestamp":"` + ts + `","signature":"` + sig + `","external_task_ref":""}`, 400, "malformed_external_task_ref"},
		{"control char in external ref", url, nil, `{"timestamp":"` + ts + `","signature":"` + sig + `","external_task_ref":"a\nb"}`, 400, "malformed_external_task_ref"},
		{"oversized external ref", url, nil, `{"timestamp":"` + ts + `","signature":"` + sig + `","external_task_ref":"` + strings.Repeat("x", 513) + `"}`, 400, "malformed_external_task_ref"},
		{"unknown field", url, nil, `{"timestamp":"` + ts + `","signature":"` + sig + `","kind":"thread"}`, 400, "unknown_field"},
		{"authorization sent", url, map[string]string{"Authorization": "Bearer leaked"}, `{"timestamp":"` + ts + `","signature":"` + sig + `"}`, 400, "authorization_not_allowed"},
		{"unknown runtime", s.URL() + "/v1/agent/agent-999/task/register", nil, `{"timestamp":"` + ts + `","signature":"` + wrongMsgSig + `"}`, 404, "unknown_runtime"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, http.MethodPost, tc.url, tc.hdr, []byte(tc.body))
			if r.status != tc.status || errorReason(t, r) != tc.reason {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.reason)
			}
		})
	}

	// The clock moving forward makes a once-valid registration stale.
	clock.Add(5*time.Minute + time.Second)
	if r := registerTask(t, c, s, k, "agent-123", "", t0); r.status != http.StatusUnauthorized {
		t.Errorf("registration after the clock moved: %d, want 401", r.status)
	}

	tasks := s.Tasks()
	if len(tasks) != 4 {
		t.Fatalf("Tasks() = %v, want 4", tasks)
	}
	if diff := cmp.Diff(Task{TaskID: process, RuntimeID: "agent-123"}, tasks[0]); diff != "" {
		t.Errorf("process task (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Task{TaskID: thread, RuntimeID: "agent-123", ExternalTaskRef: "thread-a"}, tasks[1]); diff != "" {
		t.Errorf("thread task (-want +got):\n%s", diff)
	}
	want := Stats{
		TaskRegistrations:          4,
		ProcessTaskRegistrations:   2,
		ThreadTaskRegistrations:    2,
		RegistrationsByRuntime:     map[string]int{"agent-123": 4},
		RegistrationsByExternalRef: map[string]int{"thread-a": 1, "thread-b": 1},
		RequestsByMode:             map[string]int{},
		Rejections:                 len(bad) + 1,
		RejectionsByReason: map[string]int{
			"unsigned": 2, "bad_signature": 4, "timestamp_skew": 3, "malformed_timestamp": 3,
			"malformed_body": 4, "malformed_external_task_ref": 4, "unknown_field": 1,
			"authorization_not_allowed": 1, "unknown_runtime": 1,
		},
	}
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Errorf("Stats() (-want +got):\n%s", diff)
	}
}

func TestEncryptedTaskIDs(t *testing.T) {
	s, _ := newTestServer(t, Options{EncryptTaskIDs: true})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	r := registerTask(t, c, s, k, "agent-123", "thread-x", t0)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var out map[string]string
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if _, plain := out["task_id"]; plain || len(out) != 1 {
		t.Fatalf("response %s: want only encrypted_task_id", r.body)
	}
	id, err := k.OpenTaskID(out["encrypted_task_id"])
	if err != nil {
		t.Fatalf("OpenTaskID: %v", err)
	}
	if tasks := s.Tasks(); len(tasks) != 1 || tasks[0].TaskID != id {
		t.Fatalf("opened id %q, Tasks() = %v", id, tasks)
	}
	if _, err := testKey(t, 8).OpenTaskID(out["encrypted_task_id"]); err == nil {
		t.Error("another key opened the sealed task id")
	}
	// The opened id is usable for assertions.
	r = do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": sign(t, k, "agent-123", id, t0)}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("assertion on opened id: %d %s", r.status, r.body)
	}
}

func TestRegisterRuntime(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	k := testKey(t, 3)
	rec := identity.Record{AgentRuntimeID: "rt-x", AgentPrivateKey: identity.Secret(k.MarshalPrivateKey()), AccountID: "acct", IsFedRAMP: true}
	if err := s.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterRuntime(rec); err != nil {
		t.Fatalf("re-registering the same key: %v", err)
	}
	rec.AgentPrivateKey = identity.Secret(testKey(t, 4).MarshalPrivateKey())
	err := s.RegisterRuntime(rec)
	if err == nil {
		t.Fatal("re-registering with another key succeeded")
	}
	if strings.Contains(err.Error(), rec.AgentPrivateKey.Reveal()) {
		t.Fatal("error quotes the private key")
	}
	if err := s.RegisterRuntime(identity.Record{AgentRuntimeID: "rt-y", AgentPrivateKey: "bm90IGEga2V5"}); err == nil {
		t.Fatal("bad key accepted")
	}
	got := s.Runtimes()
	if len(got) != 1 || got[0].PublicKeySSH != k.SSHPublicKey() || got[0].AccountID != "acct" || !got[0].FedRAMP {
		t.Fatalf("Runtimes() = %+v", got)
	}
	if st := s.Stats(); st.AgentRegistrations != 0 {
		t.Errorf("RegisterRuntime counted as agent registration: %+v", st)
	}
}
