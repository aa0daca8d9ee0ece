package transport_test

// Base transports and bodies the tests wrap: a no-network stub, a recorder
// of every credential sent, counting and panicking layers, a body that
// counts its closes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

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
