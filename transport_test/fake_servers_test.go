package transport_test

// Servers in front of or beside the reference server: a header log for a
// foreign origin, a front that counts and intercepts, a counting task
// endpoint.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
)

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
