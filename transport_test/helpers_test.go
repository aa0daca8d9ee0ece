package transport_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// testTimeout bounds every wait in this package so that a bug shows up as a
// failure, not as a hung test binary.
const testTimeout = 45 * time.Second

// fakeClock is a settable clock shared by the transport (testhooks Now) and the
// reference server (Options.Now) so that skew checks stay consistent.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(start time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// wholeSecondNow returns the current time truncated to a whole second, so a
// fake clock started there can add up to 999 ms without changing second.
func wholeSecondNow() time.Time { return time.Now().Truncate(time.Second) }

// acctSeq makes account ids unique within the test binary: agent
// provisioning is single-flighted process-wide per account.
var acctSeq atomic.Int64

func uniqueAccount(prefix string) string {
	return fmt.Sprintf("acct-%s-%d", prefix, acctSeq.Add(1))
}

// unique returns a name unique in the test binary.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, acctSeq.Add(1)) }

// newIdentityServer starts the reference server and closes it when the test
// ends.
func newIdentityServer(t testing.TB, opts identitytest.Options) *identitytest.Server {
	t.Helper()
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// newRuntime makes a fresh Agent Identity known to srv without minting a JWT
// (cheaper than srv.NewAgentIdentity, which creates an RSA issuer key). Its
// runtime id is unique in the process, so no two tests share a process task.
func newRuntime(t testing.TB, srv *identitytest.Server, accountID string, fedRAMP bool) identity.Record {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return registerAgent(t, srv, key, accountID, fedRAMP)
}

// registerAgent makes an Agent Identity with key known to srv.
func registerAgent(t testing.TB, srv *identitytest.Server, key *identity.PrivateKey, accountID string, fedRAMP bool) identity.Record {
	t.Helper()
	ident := identity.Record{
		AgentRuntimeID:  unique("rt"),
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       accountID,
		ChatGPTUserID:   "user-helper",
		PlanType:        "plus",
		IsFedRAMP:       fedRAMP,
	}
	if err := srv.RegisterRuntime(ident); err != nil {
		t.Fatal(err)
	}
	return ident
}

// newHTTPBase returns a real base transport with enough idle connections per
// host for the concurrent tests, closed when the test ends.
func newHTTPBase(t testing.TB) *http.Transport {
	t.Helper()
	base := &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		MaxConnsPerHost:     128,
		IdleConnTimeout:     30 * time.Second,
	}
	t.Cleanup(base.CloseIdleConnections)
	return base
}

// newTransport builds a transport and fails the test on a config error.
func newTransport(t testing.TB, base http.RoundTripper, cfg transport.Config) *transport.Transport {
	t.Helper()
	rt, err := transport.New(base, cfg)
	if err != nil {
		t.Fatalf("transport.New: %v", err)
	}
	return rt
}

// loopbackConfig is a config whose first-party origin and AuthAPI are srv.
func loopbackConfig(srv *identitytest.Server, creds *credentials.Credentials) transport.Config {
	return transport.Config{
		Credentials:       creds,
		ChatGPTBaseURL:    srv.URL(),
		AuthAPIBaseURL:    srv.URL(),
		AllowInsecureHTTP: true,
		IdentityStore:     credentials.NewMemoryStore(),
	}
}

func agentCreds(ident identity.Record) *credentials.Credentials {
	return &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &ident}
}

func chatGPTCreds(token, accountID string, fedRAMP bool) *credentials.Credentials {
	return &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{
		AccessToken: token, AccountID: accountID, FedRAMP: fedRAMP,
	}}
}

func apiKeyCreds(key string) *credentials.Credentials {
	return &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: key}
}

// threadCtx tags ctx with thread unless thread is empty.
func threadCtx(ctx context.Context, thread string) context.Context {
	if thread == "" {
		return ctx
	}
	return transport.WithThread(ctx, thread)
}

// newRequest builds a POST with a replayable JSON body.
func newRequest(t testing.TB, ctx context.Context, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// roundTripEcho sends one request for thread ("" for none) through rt and
// returns the status and the reference server's echo. It returns an error
// rather than failing so that it can run on worker goroutines.
func roundTripEcho(ctx context.Context, rt http.RoundTripper, url, thread string) (int, identitytest.Echo, error) {
	r := post(ctx, rt, url, thread)
	if r.err == nil && r.echoErr != nil {
		return r.status, r.echo, fmt.Errorf("decoding echo: %w", r.echoErr)
	}
	return r.status, r.echo, r.err
}

// mustEcho is roundTripEcho that fails the test unless the answer is 200.
func mustEcho(t testing.TB, ctx context.Context, rt http.RoundTripper, url, thread string) identitytest.Echo {
	t.Helper()
	status, echo, err := roundTripEcho(ctx, rt, url, thread)
	if err != nil {
		t.Fatalf("round trip (thread %q): %v", thread, err)
	}
	if status != http.StatusOK {
		t.Fatalf("round trip (thread %q): status %d", thread, status)
	}
	return echo
}

// runWorkers runs fn(i) for i in [0, n) on at most workers goroutines and
// returns the first error. Every goroutine has ended when it returns.
func runWorkers(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("item %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// onlySeen returns the only protected request srv recorded.
func onlySeen(t testing.TB, srv *identitytest.Server) identitytest.SeenRequest {
	t.Helper()
	seen := srv.Requests()
	if len(seen) != 1 {
		t.Fatalf("server recorded %d protected requests, want 1", len(seen))
	}
	return seen[0]
}

// taskByID finds a task registered at srv.
func taskByID(srv *identitytest.Server, id string) (identitytest.Task, bool) {
	for _, task := range srv.Tasks() {
		if task.TaskID == id {
			return task, true
		}
	}
	return identitytest.Task{}, false
}

// checkAssertion verifies that the Authorization values are one
// AgentAssertion of runtimeID on a task that srv registered for runtimeID
// and thread ("" = the process task). It returns the task id.
func checkAssertion(t testing.TB, srv *identitytest.Server, values []string, runtimeID, thread string) string {
	t.Helper()
	if len(values) != 1 {
		t.Fatalf("got %d Authorization values, want 1 AgentAssertion", len(values))
	}
	a, err := identity.ParseAssertion(values[0])
	if err != nil {
		t.Fatalf("Authorization is not an AgentAssertion: %v", err)
	}
	if a.AgentRuntimeID != runtimeID {
		t.Fatalf("assertion runtime %q, want %q", a.AgentRuntimeID, runtimeID)
	}
	task, ok := taskByID(srv, a.TaskID)
	if !ok {
		t.Fatalf("assertion names task %q, which the server never registered", a.TaskID)
	}
	if task.RuntimeID != runtimeID || task.ExternalTaskRef != thread {
		t.Fatalf("assertion task belongs to runtime %q thread %q, want runtime %q thread %q",
			task.RuntimeID, task.ExternalTaskRef, runtimeID, thread)
	}
	return a.TaskID
}

// checkNoCredential fails if h carries a credential or routing header.
func checkNoCredential(t testing.TB, h http.Header) {
	t.Helper()
	for _, name := range []string{headers.Authorization, headers.ChatGPTAccountID, headers.OpenAIFedRAMP} {
		if v := h.Values(name); len(v) != 0 {
			t.Errorf("%s reached a non-first-party origin (%d values)", name, len(v))
		}
	}
}

// checkRouting fails unless h has exactly the routing headers of accountID
// and fedRAMP (none at all when accountID is empty).
func checkRouting(t testing.TB, h http.Header, accountID string, fedRAMP bool) {
	t.Helper()
	var wantAcct, wantFed []string
	if accountID != "" {
		wantAcct = []string{accountID}
		if fedRAMP {
			wantFed = []string{"true"}
		}
	}
	if got := h.Values(headers.ChatGPTAccountID); !equalStrings(got, wantAcct) {
		t.Errorf("ChatGPT-Account-ID = %q, want %q", got, wantAcct)
	}
	if got := h.Values(headers.OpenAIFedRAMP); !equalStrings(got, wantFed) {
		t.Errorf("X-OpenAI-Fedramp = %q, want %q", got, wantFed)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// headerLog is a plain httptest server standing in for an origin outside
// the allow-list: it answers 200 and keeps the headers it was sent.
type headerLog struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func newHeaderLog(t testing.TB) *headerLog {
	t.Helper()
	l := &headerLog{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		l.mu.Lock()
		l.got = append(l.got, r.Header.Clone())
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"mode":"none"}`)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *headerLog) URL() string { return l.srv.URL }

func (l *headerLog) headers() []http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]http.Header(nil), l.got...)
}

func (l *headerLog) reset() {
	l.mu.Lock()
	l.got = nil
	l.mu.Unlock()
}

// countingBody is a request body that counts Close calls and signals the
// first one.
type countingBody struct {
	r      io.Reader
	closes atomic.Int32
	once   sync.Once
	closed chan struct{}
}

func newCountingBody(s string) *countingBody {
	return &countingBody{r: strings.NewReader(s), closed: make(chan struct{})}
}

func (b *countingBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *countingBody) Close() error {
	b.closes.Add(1)
	b.once.Do(func() { close(b.closed) })
	return nil
}

// waitClosed waits until the body was closed at least once. The base
// transport may close a request body on its write goroutine after
// RoundTrip returned, so the first close is awaited rather than assumed.
func (b *countingBody) waitClosed(t testing.TB) {
	t.Helper()
	select {
	case <-b.closed:
	case <-time.After(testTimeout):
		t.Fatal("request body never closed")
	}
}

// stubBase is a no-network base transport. Registration routes
// (/v1/agent/...) are served in process by registrar (the reference
// server's handler, which really verifies them); every other request is
// answered 200 without looking at its credential, and the assertion it
// carried is recorded.
type stubBase struct {
	registrar http.Handler

	resources     atomic.Int64
	registrations atomic.Int64
	closeIdle     atomic.Int64

	mu        sync.Mutex
	auth      map[string]int            // Authorization value → count
	taskOf    map[string]map[string]int // thread key → task ids seen
	lastReq   *http.Request
	lastError error
}

func newStubBase(registrar http.Handler) *stubBase {
	return &stubBase{registrar: registrar, auth: map[string]int{}, taskOf: map[string]map[string]int{}}
}

func (s *stubBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/v1/agent/") {
		s.registrations.Add(1)
		if s.registrar == nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, errors.New("stubBase: unexpected registration")
		}
		return serveInProcess(s.registrar, req), nil
	}
	s.resources.Add(1)
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	v := req.Header.Get(headers.Authorization)
	thread, _ := transport.ThreadFrom(req.Context())
	var taskID string
	var perr error
	if strings.HasPrefix(v, headers.SchemeAgentAssertion+" ") {
		a, err := identity.ParseAssertion(v)
		taskID, perr = a.TaskID, err
	}
	s.mu.Lock()
	s.auth[v]++
	s.lastReq = req
	if perr != nil && s.lastError == nil {
		s.lastError = perr
	}
	if taskID != "" {
		m := s.taskOf[thread]
		if m == nil {
			m = map[string]int{}
			s.taskOf[thread] = m
		}
		m[taskID]++
	}
	s.mu.Unlock()
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(`{}`)),
		ContentLength: 2,
		Request:       req,
	}, nil
}

func (s *stubBase) CloseIdleConnections() { s.closeIdle.Add(1) }

// distinctAuth returns how many different Authorization values resources saw.
func (s *stubBase) distinctAuth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auth)
}

// tasksFor returns the task ids the assertions of thread named.
func (s *stubBase) tasksFor(thread string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, n := range s.taskOf[thread] {
		out[id] = n
	}
	return out
}

func (s *stubBase) parseError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError
}

func (s *stubBase) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastReq
}

// stubSend sends one request through rt (whose base is a stubBase) and
// returns an error for anything but 200.
func stubSend(ctx context.Context, rt http.RoundTripper, url, thread string) error {
	r := post(ctx, rt, url, thread)
	if r.err == nil && r.status != http.StatusOK {
		return fmt.Errorf("status %d", r.status)
	}
	return r.err
}

// taskCounter is a counting fake task-registration endpoint for tests that
// need thousands of registrations: it checks nothing but the body's shape,
// hands out sequential task ids and remembers which external_task_ref each
// belongs to.
type taskCounter struct {
	mu    sync.Mutex
	next  int
	byRef map[string]int    // external_task_ref → registrations
	owner map[string]string // task id → external_task_ref
}

func newTaskCounter() *taskCounter {
	return &taskCounter{byRef: map[string]int{}, owner: map[string]string{}}
}

func (c *taskCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Timestamp       string  `json:"timestamp"`
		Signature       string  `json:"signature"`
		ExternalTaskRef *string `json:"external_task_ref"`
	}
	if !strings.HasSuffix(r.URL.Path, "/task/register") || json.NewDecoder(r.Body).Decode(&body) != nil ||
		body.Timestamp == "" || body.Signature == "" || (body.ExternalTaskRef != nil && *body.ExternalTaskRef == "") {
		http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
		return
	}
	ref := ""
	if body.ExternalTaskRef != nil {
		ref = *body.ExternalTaskRef
	}
	c.mu.Lock()
	c.next++
	id := fmt.Sprintf("task-%06d", c.next)
	c.byRef[ref]++
	c.owner[id] = ref
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"task_id":%q}`, id)
}

func (c *taskCounter) registrations(ref string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byRef[ref]
}

func (c *taskCounter) ownerOf(taskID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owner[taskID]
}

// agentIdentityRecord returns a fresh Agent Identity record that no server
// knows, for tests whose registrations go to a fake.
func agentIdentityRecord(t testing.TB) identity.Record {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return identity.Record{
		AgentRuntimeID:  unique("rt-fake"),
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       uniqueAccount("fake"),
	}
}

// serveInProcess answers req with h as a RoundTripper would, without a
// network hop, closing the request body as the RoundTripper contract asks.
func serveInProcess(h http.Handler, req *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if req.Body != nil {
		req.Body.Close()
	}
	resp := w.Result()
	resp.Request = req
	return resp
}

// constReader yields the same byte forever: as the KeyRand test hook it makes
// the key of a provisioned identity known to the test (seed = 32 × b), so
// the test can search outputs for it.
type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// keySecrets returns the forms of the private key with seed 32 × b that
// must never be printed: the PKCS#8 base64 of auth.json and the raw seed in
// hex.
func keySecrets(t testing.TB, b byte) (*identity.PrivateKey, []string) {
	t.Helper()
	seed := bytes.Repeat([]byte{b}, 32)
	key, err := identity.NewPrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return key, []string{key.MarshalPrivateKey(), hex.EncodeToString(seed)}
}

// seededAgent makes an Agent Identity with seed 32 × b known to srv and
// returns it with its secret forms.
func seededAgent(t testing.TB, srv *identitytest.Server, b byte) (identity.Record, []string) {
	t.Helper()
	key, secrets := keySecrets(t, b)
	return registerAgent(t, srv, key, unique("acct"), false), secrets
}

// wireRecorder is the base transport of these tests: it forwards to a real
// http.Transport and keeps every credential that went over the wire (each
// Authorization value and each task-registration signature), so a test can
// search errors and logs for them. It also counts what it forwarded.
type wireRecorder struct {
	next http.RoundTripper

	resources, registrations atomic.Int64

	mu      sync.Mutex
	secrets map[string]bool
}

func newWireRecorder(t testing.TB, next http.RoundTripper) *wireRecorder {
	if next == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		t.Cleanup(tr.CloseIdleConnections)
		next = tr
	}
	return &wireRecorder{next: next, secrets: map[string]bool{}}
}

func (r *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	isReg := strings.Contains(req.URL.Path, "/v1/agent/")
	if isReg {
		r.registrations.Add(1)
	} else {
		r.resources.Add(1)
	}
	if v := req.Header.Get("Authorization"); v != "" {
		r.keep(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			r.keep(cred)
		}
	}
	if !isReg || req.Body == nil || req.Body == http.NoBody {
		return r.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var reg struct {
		Signature string `json:"signature"`
	}
	if json.Unmarshal(body, &reg) == nil && reg.Signature != "" {
		r.keep(reg.Signature)
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	return r.next.RoundTrip(out)
}

func (r *wireRecorder) CloseIdleConnections() {
	if c, ok := r.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (r *wireRecorder) keep(s string) {
	r.mu.Lock()
	r.secrets[s] = true
	r.mu.Unlock()
}

// Secrets returns every credential seen so far.
func (r *wireRecorder) Secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		out = append(out, s)
	}
	return out
}

// syncLog is a goroutine-safe buffer for slog handlers.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// debugLoggers returns a debug logger that writes text records to one buffer
// and JSON records to another.
func debugLoggers() (*slog.Logger, *syncLog, *syncLog) {
	text, js := &syncLog{}, &syncLog{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return slog.New(slog.NewMultiHandler(slog.NewTextHandler(text, opts), slog.NewJSONHandler(js, opts))), text, js
}

// errTexts renders err with every verb a caller might log it with.
func errTexts(err error) []string {
	if err == nil {
		return nil
	}
	return []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%s", err)}
}

// checkNoSecret fails when text contains any of secrets. It never prints a
// secret, only its length and position in the list.
func checkNoSecret(t testing.TB, what, text string, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if len(s) < 8 {
			continue // too short to be a credential; would match by chance
		}
		if strings.Contains(text, s) {
			t.Errorf("%s contains secret #%d (%d bytes)", what, i, len(s))
		}
	}
}

// frontServer is an HTTP server in front of the reference server's handler.
// It counts task-registration attempts per external_task_ref ("" for the
// process task), records every protected-resource request as it arrived
// (including ones the reference server answers with an injected fault) and
// lets a test intercept registrations and resource requests.
type frontServer struct {
	srv  *identitytest.Server
	next http.Handler
	hs   *httptest.Server

	mu       sync.Mutex
	attempts map[string]int
	seen     []frontSeen
	// onRegister, when set, runs before a task registration reaches the
	// server; returning true means it answered the request itself.
	onRegister func(w http.ResponseWriter, r *http.Request, ref string) bool
	// onTask, when set, runs with the id of every task the server registered.
	onTask func(taskID string)
	// onResource, when set, runs before a resource request reaches the server.
	onResource func(r *http.Request)
}

// frontSeen is a resource request as the front received it.
type frontSeen struct {
	auth string // Authorization; a secret, never print it
	body []byte
}

func newFrontServer(t *testing.T, srv *identitytest.Server) *frontServer {
	f := &frontServer{srv: srv, next: srv.Handler(), attempts: map[string]int{}}
	f.hs = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.hs.Close)
	return f
}

func (f *frontServer) URL() string { return f.hs.URL }

func (f *frontServer) setOnRegister(fn func(w http.ResponseWriter, r *http.Request, ref string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onRegister = fn
}

func (f *frontServer) setOnTask(fn func(taskID string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTask = fn
}

func (f *frontServer) setOnResource(fn func(r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onResource = fn
}

// Attempts returns how many task registrations for ref reached the front.
func (f *frontServer) Attempts(ref string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[ref]
}

// Seen returns the resource requests received so far.
func (f *frontServer) Seen() []frontSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frontSeen(nil), f.seen...)
}

func (f *frontServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !strings.HasSuffix(r.URL.Path, "/task/register") {
		f.mu.Lock()
		f.seen = append(f.seen, frontSeen{auth: r.Header.Get("Authorization"), body: body})
		hook := f.onResource
		f.mu.Unlock()
		if hook != nil {
			hook(r)
		}
		f.next.ServeHTTP(w, r)
		return
	}
	var reg struct {
		Ref string `json:"external_task_ref"`
	}
	_ = json.Unmarshal(body, &reg)
	f.mu.Lock()
	f.attempts[reg.Ref]++
	hook, onTask := f.onRegister, f.onTask
	f.mu.Unlock()
	if hook != nil && hook(w, r, reg.Ref) {
		return
	}
	rw := httptest.NewRecorder()
	f.next.ServeHTTP(rw, r)
	if onTask != nil && rw.Code == http.StatusOK {
		var res struct {
			TaskID string `json:"task_id"`
		}
		if json.Unmarshal(rw.Body.Bytes(), &res) == nil && res.TaskID != "" {
			onTask(res.TaskID)
		}
	}
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())
}

// waitInStack waits until at least n goroutines have every one of
// parts in their stack dump (a frame such as taskCacheWait, or a state
// such as "[select"). It is how a test learns that callers are parked
// inside the task cache waiting on a shared registration, which no channel
// can report from outside the package. It polls, bounded by shortWait.
func waitInStack(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(shortWait)
	buf := make([]byte, 1<<20)
	got := 0
	for time.Now().Before(deadline) {
		size := runtime.Stack(buf, true)
		for size == len(buf) && len(buf) < 64<<20 {
			buf = make([]byte, 2*len(buf))
			size = runtime.Stack(buf, true)
		}
		got = 0
	goroutines:
		for _, g := range strings.Split(string(buf[:size]), "\n\n") {
			for _, p := range parts {
				if !strings.Contains(g, p) {
					continue goroutines
				}
			}
			got++
		}
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d goroutines with %q after %v, want %d", got, parts, shortWait, n)
}

// taskCacheWait is the frame of a caller waiting for (or, on the
// caller's own goroutine, running) a registration in a task cache. The
// flight goroutine of a cancellable caller runs in "wait.func1(", which
// this does not match.
const taskCacheWait = "taskcache.(*Cache).wait("

// gate holds an HTTP handler until the test opens it. Cleanup opens it
// too, so a failing test never leaves a handler (and Close) blocked.
type gate struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// hold reports the arrival of r and blocks until the gate opens or the
// client gives up.
func (g *gate) hold(r *http.Request) {
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-r.Context().Done():
	}
}

// receive returns the next value of ch, failing the test after shortWait.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(shortWait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// countingRT counts the requests it passes to next and forwards
// CloseIdleConnections, as every layer of a transport chain must.
type countingRT struct {
	next  http.RoundTripper
	calls atomic.Int64
}

func (c *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(req)
}

func (c *countingRT) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// panicRT panics on every request: a registration client that blows up.
type panicRT struct{}

func (panicRT) RoundTrip(*http.Request) (*http.Response, error) {
	panic("panicRT: registration transport exploded")
}

// countingSource counts the refreshes asked of a refreshing token source.
type countingSource struct {
	inner     credentials.TokenSource
	refreshes atomic.Int64
}

func (s *countingSource) Token(ctx context.Context) (*credentials.Token, error) {
	return s.inner.Token(ctx)
}

func (s *countingSource) Refresh(ctx context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	s.refreshes.Add(1)
	return s.inner.(credentials.Refresher).Refresh(ctx, rejected)
}

// numberedBody is a distinctive request body of about size bytes for request i,
// so the server-side copy can be matched to its sender.
func numberedBody(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "request-%03d:", i)
	for b.Len() < size {
		b.WriteString("0123456789abcdef")
	}
	return b.Bytes()
}
