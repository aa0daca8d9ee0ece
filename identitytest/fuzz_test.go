package identitytest

import (
	"bytes"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/identity"
)

// The fuzz targets drive the server's handler directly (no network per
// input) for the runtime fuzzRuntime whose key is the test-vector seed 0x07×32,
// at the fixed time t0. Their seed corpora are in testdata/fuzz/<Name>/.

const fuzzRuntime = "rt-fuzz"

// fuzzServer starts a server on a frozen clock with a deterministic
// randomness source, knows fuzzRuntime, and is closed when f ends.
func fuzzServer(f *testing.F) (*Server, *identity.PrivateKey) {
	f.Helper()
	s, err := NewServer(Options{
		Now:        func() time.Time { return t0 },
		Rand:       mrand.NewChaCha8([32]byte{'f', 'u', 'z', 'z'}),
		RequestLog: -1, // keep no history: fuzzing sends millions of requests
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	k, err := identity.NewPrivateKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	if err := s.RegisterRuntime(identity.Record{AgentRuntimeID: fuzzRuntime, AgentPrivateKey: identity.Secret(k.MarshalPrivateKey())}); err != nil {
		f.Fatal(err)
	}
	return s, k
}

// serve sends one request through the handler and returns the recorder.
func serve(h http.Handler, method, path string, hdr http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkErrorBody asserts the documented 4xx body: {"error": reason} with a
// fixed identifier that never quotes request data.
func checkErrorBody(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("%d body %q is not {\"error\": reason}", rec.Code, rec.Body.Bytes())
	}
	for _, c := range e.Error {
		if (c < 'a' || c > 'z') && c != '_' {
			t.Fatalf("reason %q is not a fixed identifier", e.Error)
		}
	}
	if len(input) > 16 && strings.Contains(rec.Body.String(), input) {
		t.Fatalf("error body echoes the request: %q", rec.Body.Bytes())
	}
}

// FuzzAssertionHeader sends a fuzzed Authorization header to a protected
// resource. The server has no Bearer tokens, so the answer must be 200 for
// exactly the assertions that a model of the rules accepts (right runtime,
// signature by its key, the registered task, timestamp within the skew)
// and 401 for everything else: never another status, never a panic, never
// an echo of the credential.
func FuzzAssertionHeader(f *testing.F) {
	s, k := fuzzServer(f)
	h := s.Handler()
	sig, ts := identity.RegistrationSignature(k, fuzzRuntime, t0)
	reg := serve(h, http.MethodPost, "/v1/agent/"+fuzzRuntime+"/task/register", nil,
		[]byte(`{"timestamp":"`+ts+`","signature":"`+sig+`","external_task_ref":"thread-1"}`))
	var out struct {
		TaskID string `json:"task_id"`
	}
	if reg.Code != http.StatusOK || json.Unmarshal(reg.Body.Bytes(), &out) != nil || out.TaskID == "" {
		f.Fatalf("task registration: %d %s", reg.Code, reg.Body.Bytes())
	}
	task := out.TaskID
	// Valid assertions depend on the task id the server handed out.
	for _, at := range []time.Time{t0, t0.Add(-DefaultMaxSkew), t0.Add(DefaultMaxSkew + time.Second)} {
		hv, err := identity.SignAssertion(k, fuzzRuntime, task, at)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(hv)
	}

	f.Fuzz(func(t *testing.T, authorization string) {
		rec := serve(h, http.MethodPost, "/v1/responses", http.Header{"Authorization": {authorization}}, []byte(`{}`))
		want := http.StatusUnauthorized
		if a, err := identity.ParseAssertion(authorization); err == nil &&
			a.AgentRuntimeID == fuzzRuntime && a.TaskID == task && a.Verify(k.PublicKey()) == nil {
			if at, err := a.Time(); err == nil && at.Sub(t0).Abs() <= DefaultMaxSkew {
				want = http.StatusOK
			}
		}
		if rec.Code != want {
			t.Fatalf("status %d, want %d; body %s", rec.Code, want, rec.Body.Bytes())
		}
		if want == http.StatusUnauthorized {
			checkErrorBody(t, rec, authorization)
			return
		}
		var echo Echo
		if err := json.Unmarshal(rec.Body.Bytes(), &echo); err != nil {
			t.Fatalf("200 body is not an Echo: %v", err)
		}
		if echo != (Echo{Mode: ModeAssertion, AgentRuntimeID: fuzzRuntime, TaskID: task, ExternalTaskRef: "thread-1", Path: "/v1/responses"}) {
			t.Fatalf("echo %+v", echo)
		}
		if strings.Contains(rec.Body.String(), strings.TrimPrefix(authorization, identity.AssertionScheme+" ")) {
			t.Fatal("200 body echoes the assertion")
		}
	})
}

// FuzzTaskRegistrationBody posts fuzzed bodies to the task registration
// route of a known runtime. The answer is 200 exactly when a model of the
// task registration wire format accepts the body (one JSON object of string timestamp and
// signature, optional valid external_task_ref, nothing else, signature by
// the runtime's key, timestamp within the skew), and 400 or 401 otherwise;
// never 404 or 5xx.
func FuzzTaskRegistrationBody(f *testing.F) {
	s, k := fuzzServer(f)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(h, http.MethodPost, "/v1/agent/"+fuzzRuntime+"/task/register", nil, body)
		valid, ref := validRegistration(body, k)
		switch {
		case valid && rec.Code != http.StatusOK:
			t.Fatalf("valid registration answered %d %s", rec.Code, rec.Body.Bytes())
		case !valid && rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized:
			t.Fatalf("invalid registration answered %d %s", rec.Code, rec.Body.Bytes())
		case !valid:
			checkErrorBody(t, rec, string(body))
			return
		}
		var out map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out) != 1 || out["task_id"] == "" {
			t.Fatalf("200 body %s is not {\"task_id\": id}", rec.Body.Bytes())
		}
		var got *Task
		for _, tk := range s.Tasks() {
			if tk.TaskID == out["task_id"] {
				got = &tk
			}
		}
		if got == nil || got.RuntimeID != fuzzRuntime || got.ExternalTaskRef != ref {
			t.Fatalf("registered task %+v, want runtime %q ref %q", got, fuzzRuntime, ref)
		}
	})
}

// validRegistration is an independent model of what the registration route
// accepts; it returns the external_task_ref of an accepted body.
func validRegistration(body []byte, k *identity.PrivateKey) (bool, string) {
	if len(body) > maxRegistrationBody {
		return false, ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return false, ""
	}
	str := func(name string) (string, bool) {
		raw, ok := obj[name]
		var s string
		if !ok || len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	ts, ok1 := str("timestamp")
	sig, ok2 := str("signature")
	if !ok1 || !ok2 {
		return false, ""
	}
	n := 2
	ref, hasRef := str("external_task_ref")
	if _, present := obj["external_task_ref"]; present {
		if !hasRef || !threadKeyOK(ref) {
			return false, ""
		}
		n++
	}
	if len(obj) != n {
		return false, ""
	}
	at, err := identity.ParseTimestamp(ts)
	if err != nil || at.Sub(t0).Abs() > DefaultMaxSkew {
		return false, ""
	}
	if identity.VerifyRegistrationSignature(k.PublicKey(), fuzzRuntime, ts, sig) != nil {
		return false, ""
	}
	return true, ref
}

// threadKeyOK restates the thread-key rules: non-empty valid UTF-8 of at
// most 512 bytes without control characters.
func threadKeyOK(s string) bool {
	if s == "" || len(s) > 512 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}
