package interop_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/interop"
	"github.com/agentauth/agentauth/transport"
)

// sdkAPIKey is the API key the SDKs are configured with. No server knows
// it: a request that still carries it at a first-party origin would fail.
const sdkAPIKey = "sk-sdk-own-key"

// accessToken is the ChatGPT login of the flag-off tests.
const accessToken = "tok-chatgpt-login"

var seq atomic.Int64

// newServer starts the reference server with the WebSocket echo and the
// ChatGPT access token, and closes it when the test ends.
func newServer(t *testing.T, opts identitytest.Options) *identitytest.Server {
	t.Helper()
	if opts.WebSocket == nil {
		opts.WebSocket = interop.WebSocketEcho
	}
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// newRecord makes a fresh Agent Identity known to srv (cheaper than
// srv.NewAgentIdentity, which also creates an RSA issuer key), with a
// unique account id and the given FedRAMP bit.
func newRecord(t *testing.T, srv *identitytest.Server, fedRAMP bool) identity.Record {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := seq.Add(1)
	rec := identity.Record{
		AgentRuntimeID:  fmt.Sprintf("rt-interop-%d", n),
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       fmt.Sprintf("acct-interop-%d", n),
		ChatGPTUserID:   "user-interop",
		PlanType:        "plus",
		IsFedRAMP:       fedRAMP,
	}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// sentRequest is what left the agentauth transport for the network.
type sentRequest struct {
	URL    string
	Header http.Header
}

// recorder is the base transport under agentauth: it records every request
// that reaches the network, including attempts the server answers with an
// injected fault (which Server.Requests does not list).
type recorder struct {
	base *http.Transport
	mu   sync.Mutex
	sent []sentRequest
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.sent = append(r.sent, sentRequest{URL: req.URL.String(), Header: req.Header.Clone()})
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func (r *recorder) CloseIdleConnections() { r.base.CloseIdleConnections() }

// resourceRequests returns the recorded requests other than agent and task
// registrations (which share the base transport).
func (r *recorder) resourceRequests() []sentRequest {
	var out []sentRequest
	for _, s := range r.requests() {
		if !strings.Contains(s.URL, "/v1/agent/") {
			out = append(out, s)
		}
	}
	return out
}

func (r *recorder) requests() []sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentRequest(nil), r.sent...)
}

// newRecorder returns a recording base transport whose idle connections
// close when the test ends.
func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{base: &http.Transport{}}
	t.Cleanup(r.base.CloseIdleConnections)
	return r
}

// agentClient returns an http.Client that signs requests to srv with rec's
// Agent Identity, over a recording base transport.
func agentClient(t *testing.T, srv *identitytest.Server, rec identity.Record) (*http.Client, *recorder, *transport.Transport) {
	t.Helper()
	js, err := rec.StorageJSON()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := transport.AgentIdentity(js)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, srv, cred, featureflag.New(false))
}

// loginClient returns an http.Client for a ChatGPT login with the flag off.
func loginClient(t *testing.T, srv *identitytest.Server, accountID string) (*http.Client, *recorder, *transport.Transport) {
	t.Helper()
	return newClient(t, srv, transport.BearerToken(accessToken, accountID, false), featureflag.New(false))
}

func newClient(t *testing.T, srv *identitytest.Server, cred transport.Credential, flag *featureflag.Flag) (*http.Client, *recorder, *transport.Transport) {
	t.Helper()
	rec := newRecorder(t)
	rt, err := transport.New(rec, transport.Options{
		Credential:    cred,
		AgentIdentity: flag,
		BaseURL:       srv.URL(),
		Fleet:         transport.Fleet{IdentityStore: credentials.NewMemoryStore()},
	})
	if err != nil {
		t.Fatalf("transport.New: %v", err)
	}
	return &http.Client{Transport: rt}, rec, rt
}

// taskFor returns the task srv registered for runtime rid with external
// ref ref ("" for the process task).
func taskFor(t *testing.T, srv *identitytest.Server, rid, ref string) identitytest.Task {
	t.Helper()
	var found []identitytest.Task
	for _, task := range srv.Tasks() {
		if task.RuntimeID == rid && task.ExternalTaskRef == ref {
			found = append(found, task)
		}
	}
	if len(found) != 1 {
		t.Fatalf("runtime %s has %d tasks with ref %q, want 1: %+v", rid, len(found), ref, srv.Tasks())
	}
	return found[0]
}

// wantAssertion checks that the server verified an assertion of rec on the
// task registered for ref.
func wantAssertion(t *testing.T, srv *identitytest.Server, rec identity.Record, ref string, got identitytest.Echo, path string) {
	t.Helper()
	task := taskFor(t, srv, rec.AgentRuntimeID, ref)
	want := identitytest.Echo{
		Mode: identitytest.ModeAssertion, AgentRuntimeID: rec.AgentRuntimeID, TaskID: task.TaskID,
		ExternalTaskRef: ref, AccountID: rec.AccountID, FedRAMP: rec.IsFedRAMP, Path: path,
	}
	if got != want {
		t.Errorf("server verified %+v, want %+v", got, want)
	}
}

// verifyAssertion checks that header is an AgentAssertion by rec on taskID
// that verifies with rec's key.
func verifyAssertion(t *testing.T, rec identity.Record, header, taskID string) {
	t.Helper()
	a, err := identity.ParseAssertion(header)
	if err != nil {
		t.Fatalf("not an AgentAssertion: %v", err)
	}
	key, err := rec.Key()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(key.PublicKey()); err != nil || a.AgentRuntimeID != rec.AgentRuntimeID || a.TaskID != taskID {
		t.Errorf("assertion on %s/%s does not verify for %s/%s: %v", a.AgentRuntimeID, a.TaskID, rec.AgentRuntimeID, taskID, err)
	}
}

// metadataStrings converts go-openai's map[string]any metadata.
func metadataStrings(t *testing.T, md map[string]any) map[string]string {
	t.Helper()
	out := make(map[string]string, len(md))
	for k, v := range md {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("metadata %q is %T, not a string", k, v)
		}
		out[k] = s
	}
	return out
}

// echoFrom decodes metadata into the Echo the server verified.
func echoFrom(t *testing.T, md map[string]string) identitytest.Echo {
	t.Helper()
	e, err := identitytest.EchoFromMetadata(md)
	if err != nil {
		t.Fatalf("metadata %v: %v", md, err)
	}
	return e
}
