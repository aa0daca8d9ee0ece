package identitytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// t0 is the fake clock's start, the test vectors' timestamp.
var t0 = time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock shared by the server and the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestServer starts a server on the fake clock and closes it at the end
// of the test.
func newTestServer(t *testing.T, opts Options) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(s.Close)
	return s, clock
}

// newClient returns a plain client with its own transport, whose idle
// connections are closed at the end of the test.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// testKey returns a deterministic key for seed byte b.
func testKey(t *testing.T, b byte) *identity.PrivateKey {
	t.Helper()
	k, err := identity.NewPrivateKeyFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// addRuntime makes a runtime with key seed b known to s.
func addRuntime(t *testing.T, s *Server, rid string, b byte) *identity.PrivateKey {
	t.Helper()
	k := testKey(t, b)
	if err := s.RegisterRuntime(identity.Record{AgentRuntimeID: rid, AgentPrivateKey: identity.Secret(k.MarshalPrivateKey())}); err != nil {
		t.Fatalf("RegisterRuntime: %v", err)
	}
	return k
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request and reads the whole response.
func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errorReason decodes {"error": reason}.
func errorReason(t *testing.T, r response) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e.Error
}

// registerTask posts a correctly signed task registration at the time at.
func registerTask(t *testing.T, c *http.Client, s *Server, k *identity.PrivateKey, rid, ref string, at time.Time) response {
	t.Helper()
	sig, ts := identity.RegistrationSignature(k, rid, at)
	body := map[string]string{"timestamp": ts, "signature": sig}
	if ref != "" {
		body["external_task_ref"] = ref
	}
	return do(t, c, http.MethodPost, s.URL()+"/v1/agent/"+rid+"/task/register", nil, mustJSON(t, body))
}

// newTask registers a task and returns its id.
func newTask(t *testing.T, c *http.Client, s *Server, k *identity.PrivateKey, rid, ref string, at time.Time) string {
	t.Helper()
	r := registerTask(t, c, s, k, rid, ref, at)
	if r.status != http.StatusOK {
		t.Fatalf("task registration: %d %s", r.status, r.body)
	}
	var out struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.TaskID == "" {
		t.Fatalf("task registration body %s: %v", r.body, err)
	}
	return out.TaskID
}

func sign(t *testing.T, k *identity.PrivateKey, rid, task string, at time.Time) string {
	t.Helper()
	h, err := identity.SignAssertion(k, rid, task, at)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
