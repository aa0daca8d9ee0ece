package transport_test

// Helpers of the recovery, failure and retry tests. Every package-level
// name starts with "rec" so that they cannot collide with the helpers of the
// other test files in this package.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// recWait bounds every wait of these tests on a channel, so that a bug
// fails the test instead of hanging it.
const recWait = 10 * time.Second

// recJitter pins both random sources: with the default backoff (1 s, jitter
// 0.5) the first wait is then exactly 1 s − 1 s·0.5·0.5 = 750 ms.
func recJitter() float64 { return 0.5 }

const recFirstBackoff = 750 * time.Millisecond

// recFront is an HTTP server in front of the reference server's handler.
// It counts task-registration attempts per external_task_ref ("" for the
// process task), records every protected-resource request as it arrived
// (including ones the reference server answers with an injected fault) and
// lets a test intercept registrations and resource requests.
type recFront struct {
	srv  *identitytest.Server
	next http.Handler
	hs   *httptest.Server

	mu       sync.Mutex
	attempts map[string]int
	seen     []recSeen
	// onRegister, when set, runs before a task registration reaches the
	// server; returning true means it answered the request itself.
	onRegister func(w http.ResponseWriter, r *http.Request, ref string) bool
	// onTask, when set, runs with the id of every task the server registered.
	onTask func(taskID string)
	// onResource, when set, runs before a resource request reaches the server.
	onResource func(r *http.Request)
}

// recSeen is a resource request as the front received it.
type recSeen struct {
	auth string // Authorization; a secret, never print it
	body []byte
}

func recNewFront(t *testing.T, srv *identitytest.Server) *recFront {
	f := &recFront{srv: srv, next: srv.Handler(), attempts: map[string]int{}}
	f.hs = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.hs.Close)
	return f
}

func (f *recFront) URL() string { return f.hs.URL }

func (f *recFront) setOnRegister(fn func(w http.ResponseWriter, r *http.Request, ref string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onRegister = fn
}

func (f *recFront) setOnTask(fn func(taskID string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTask = fn
}

func (f *recFront) setOnResource(fn func(r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onResource = fn
}

// Attempts returns how many task registrations for ref reached the front.
func (f *recFront) Attempts(ref string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[ref]
}

// Seen returns the resource requests received so far.
func (f *recFront) Seen() []recSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recSeen(nil), f.seen...)
}

func (f *recFront) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !strings.HasSuffix(r.URL.Path, "/task/register") {
		f.mu.Lock()
		f.seen = append(f.seen, recSeen{auth: r.Header.Get("Authorization"), body: body})
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

// recEnv is one reference server, one fresh agent identity and one
// transport on it, all torn down when the test ends.
type recEnv struct {
	t      *testing.T
	srv    *identitytest.Server
	front  *recFront // nil unless recEnvOptions.front
	base   string    // where resources and registrations are sent
	agent  identity.Record
	clock  *fakeClock
	rt     *transport.Transport
	client *http.Client
}

type recEnvOptions struct {
	server identitytest.Options
	front  bool                    // route everything through a recFront
	config func(*transport.Config) // adjusts the transport's Config
}

func recNewEnv(t *testing.T, o recEnvOptions) *recEnv {
	t.Helper()
	srv, err := identitytest.NewServer(o.server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &recEnv{t: t, srv: srv, base: srv.URL(), clock: newFakeClock(wholeSecondNow())}
	if o.front {
		e.front = recNewFront(t, srv)
		e.base = e.front.URL()
	}
	e.agent = recNewAgent(t, srv)
	cfg := recAgentConfig(e.base, &e.agent, e.clock)
	if o.config != nil {
		o.config(&cfg)
	}
	e.rt, e.client = recNewTransport(t, cfg)
	return e
}

var recRuntimeSeq atomic.Uint64

// recNewAgent makes a fresh Agent Identity known to srv. Its runtime id is
// unique in the process, so no two tests share a process task (those are
// shared process-wide per identity). Generating the key here avoids the
// reference server's RSA key generation for a JWT these tests do not need.
func recNewAgent(t *testing.T, srv *identitytest.Server) identity.Record {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	rec := identity.Record{
		AgentRuntimeID:  fmt.Sprintf("rt-rec-%d-%s", recRuntimeSeq.Add(1), hex.EncodeToString(b[:])),
		AgentPrivateKey: key.MarshalPrivateKey(),
		AccountID:       "acct-rec",
		ChatGPTUserID:   "user-rec",
	}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// recAgentConfig authenticates with rec against base on loopback, with the
// fake clock and pinned jitter for both the transport and its thread cache.
func recAgentConfig(base string, rec *identity.Record, clock *fakeClock) transport.Config {
	cfg := transport.Config{
		Credentials:       &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: rec},
		ChatGPTBaseURL:    base,
		AuthAPIBaseURL:    base,
		AllowInsecureHTTP: true,
	}
	*testhooks.Of(&cfg) = testhooks.Hooks{Now: clock.Now, Rand: recJitter}
	cfg.ThreadCache.Now = clock.Now
	cfg.ThreadCache.Rand = recJitter
	return cfg
}

// recNewTransport builds a transport over a private base transport whose
// connections are closed when the test ends.
func recNewTransport(t *testing.T, cfg transport.Config) (*transport.Transport, *http.Client) {
	t.Helper()
	rt, err := transport.New(&http.Transport{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	return rt, &http.Client{Transport: rt}
}

// recResult is the outcome of one request: the status and decoded echo of
// a response, or the error.
type recResult struct {
	status int
	echo   identitytest.Echo
	err    error
}

// recSend sends req with rt and reads the whole answer.
func recSend(rt http.RoundTripper, req *http.Request) recResult {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return recResult{err: err}
	}
	defer resp.Body.Close()
	r := recResult{status: resp.StatusCode}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		_ = json.Unmarshal(data, &r.echo)
	}
	return r
}

// do sends a request for path with ctx through the transport. A
// *bytes.Reader body is replayable (http.NewRequest sets GetBody).
func (e *recEnv) do(ctx context.Context, method, path string, body io.Reader) recResult {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, body)
	if err != nil {
		return recResult{err: err} // callable from any goroutine, unlike t.Fatal
	}
	return recSend(e.rt, req)
}

// get sends GET /v1/responses on thread key (none when key is "").
func (e *recEnv) get(key string) recResult {
	ctx := context.Background()
	if key != "" {
		ctx = transport.WithThread(ctx, key)
	}
	return e.do(ctx, http.MethodGet, "/v1/responses", nil)
}

// mustOK fails the test unless r is a 200 that the server authenticated
// with an assertion on a task registered for ref.
func (e *recEnv) mustOK(r recResult, ref string) {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("request for %q: %v", ref, r.err)
	}
	if r.status != http.StatusOK || r.echo.Mode != identitytest.ModeAssertion || r.echo.ExternalTaskRef != ref ||
		r.echo.AgentRuntimeID != e.agent.AgentRuntimeID {
		e.t.Fatalf("request for %q: status %d echo %+v", ref, r.status, r.echo)
	}
}

// tasks returns the tasks the server registered for ref on this env's
// runtime, oldest first.
func (e *recEnv) tasks(ref string) []identitytest.Task {
	var out []identitytest.Task
	for _, task := range e.srv.Tasks() {
		if task.RuntimeID == e.agent.AgentRuntimeID && task.ExternalTaskRef == ref {
			out = append(out, task)
		}
	}
	return out
}

// recWaitInStack waits until at least n goroutines have every one of
// parts in their stack dump (a frame such as recTaskCacheWait, or a state
// such as "[select"). It is how a test learns that callers are parked
// inside the task cache waiting on a shared registration, which no channel
// can report from outside the package. It polls, bounded by recWait.
func recWaitInStack(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(recWait)
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
	t.Fatalf("%d goroutines with %q after %v, want %d", got, parts, recWait, n)
}

// recTaskCacheWait is the frame of a caller waiting for (or, on the
// caller's own goroutine, running) a registration in a task cache. The
// flight goroutine of a cancellable caller runs in "wait.func1(", which
// this does not match.
const recTaskCacheWait = "taskcache.(*Cache).wait("

// recGate holds an HTTP handler until the test opens it. Cleanup opens it
// too, so a failing test never leaves a handler (and Close) blocked.
type recGate struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func recNewGate(t *testing.T) *recGate {
	g := &recGate{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *recGate) open() { g.once.Do(func() { close(g.release) }) }

// hold reports the arrival of r and blocks until the gate opens or the
// client gives up.
func (g *recGate) hold(r *http.Request) {
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-r.Context().Done():
	}
}

// recReceive returns the next value of ch, failing the test after recWait.
func recReceive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(recWait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// recCountingRT counts the requests it passes to next and forwards
// CloseIdleConnections, as every layer of a transport chain must.
type recCountingRT struct {
	next  http.RoundTripper
	calls atomic.Int64
}

func (c *recCountingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(req)
}

func (c *recCountingRT) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// recPanicRT panics on every request: a registration client that blows up.
type recPanicRT struct{}

func (recPanicRT) RoundTrip(*http.Request) (*http.Response, error) {
	panic("recPanicRT: registration transport exploded")
}

// recCountingSource counts the refreshes asked of a refreshing token source.
type recCountingSource struct {
	inner     credentials.TokenSource
	refreshes atomic.Int64
}

func (s *recCountingSource) Token(ctx context.Context) (*credentials.Token, error) {
	return s.inner.Token(ctx)
}

func (s *recCountingSource) Refresh(ctx context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	s.refreshes.Add(1)
	return s.inner.(credentials.Refresher).Refresh(ctx, rejected)
}

// recBody is a distinctive request body of about size bytes for request i,
// so the server-side copy can be matched to its sender.
func recBody(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "request-%03d:", i)
	for b.Len() < size {
		b.WriteString("0123456789abcdef")
	}
	return b.Bytes()
}
