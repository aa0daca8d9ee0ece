package identitytest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentauth/agentauth/internal/identity"
)

// signalHandler is a slog.Handler that reports, on a channel, every record
// whose message is msg: tests learn that a handler reached a point without
// polling or sleeping.
type signalHandler struct {
	msg string
	ch  chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// faultSignal returns a logger that signals every applied fault.
func faultSignal() (*slog.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 16)
	return slog.New(signalHandler{msg: "identitytest: fault", ch: ch}), ch
}

func TestFaultStatusRetryAfterTimes(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	s.InjectFault(RouteTaskRegister, Fault{Status: 503, RetryAfter: "2", Times: 2})
	for i := range 2 {
		r := registerTask(t, c, s, k, "agent-123", "", t0)
		if r.status != 503 || r.header.Get("Retry-After") != "2" || string(r.body) != `{"error":"injected_fault"}` {
			t.Fatalf("attempt %d: %d %q %s", i, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	newTask(t, c, s, k, "agent-123", "", t0)
	st := s.Stats()
	if st.FaultsServed != 2 || st.TaskRegistrations != 1 || st.Rejections != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultEveryRoute(t *testing.T) {
	s, _ := newTestServer(t, Options{AccessTokens: []string{"tok"}})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)
	routes := []struct {
		route  Route
		method string
		path   string
	}{
		{RouteAgentRegister, http.MethodPost, "/v1/agent/register"},
		{RouteTaskRegister, http.MethodPost, "/v1/agent/agent-123/task/register"},
		{RouteResource, http.MethodPost, "/v1/responses"},
		{RouteJWKS, http.MethodGet, "/backend-api/wham/agent-identities/jwks"},
	}
	for _, rt := range routes {
		s.InjectFault(rt.route, Fault{Status: 429, RetryAfter: "1"})
		r := do(t, c, rt.method, s.URL()+rt.path, map[string]string{"Authorization": "Bearer tok"}, []byte(`{}`))
		if r.status != 429 || r.header.Get("Retry-After") != "1" {
			t.Errorf("%s: %d %q, want 429 with Retry-After", rt.route, r.status, r.header.Get("Retry-After"))
		}
		s.ClearFaults(rt.route)
	}
	if r := registerTask(t, c, s, k, "agent-123", "", t0); r.status != 200 {
		t.Errorf("after ClearFaults: %d", r.status)
	}
	if st := s.Stats(); st.FaultsServed != len(routes) || st.Rejections != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultBodies(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	c := newClient(t)
	k := addRuntime(t, s, "agent-123", 7)

	s.InjectFault(RouteTaskRegister, Fault{Body: []byte(`{"task_id":`), Times: 1})
	if r := registerTask(t, c, s, k, "agent-123", "", t0); r.status != 200 || string(r.body) != `{"task_id":` {
		t.Errorf("Body: %d %q", r.status, r.body)
	}
	s.InjectFault(RouteTaskRegister, Fault{Status: 500, Body: []byte("<html>oops</html>"), Times: 1})
	if r := registerTask(t, c, s, k, "agent-123", "", t0); r.status != 500 || string(r.body) != "<html>oops</html>" {
		t.Errorf("Status+Body: %d %q", r.status, r.body)
	}
	s.InjectFault(RouteTaskRegister, Fault{EmptyTaskID: true, Times: 1})
	if r := registerTask(t, c, s, k, "agent-123", "", t0); r.status != 200 || string(r.body) != `{"task_id":""}` {
		t.Errorf("EmptyTaskID: %d %q", r.status, r.body)
	}
	s.InjectFault(RouteTaskRegister, Fault{MissingTaskID: true, Times: 1})
	if r := registerTask(t, c, s, k, "agent-123", "", t0); r.status != 200 || string(r.body) != `{}` {
		t.Errorf("MissingTaskID: %d %q", r.status, r.body)
	}
	s.InjectFault(RouteTaskRegister, Fault{BadEncryptedTaskID: true, Times: 1})
	r := registerTask(t, c, s, k, "agent-123", "", t0)
	var enc map[string]string
	if err := json.Unmarshal(r.body, &enc); err != nil || r.status != 200 || enc["encrypted_task_id"] == "" {
		t.Fatalf("BadEncryptedTaskID: %d %q", r.status, r.body)
	}
	if _, err := k.OpenTaskID(enc["encrypted_task_id"]); !errors.Is(err, identity.ErrSealedTaskID) {
		t.Errorf("the bad encrypted id opened: err = %v", err)
	}
	const size = 3 << 20
	s.InjectFault(RouteTaskRegister, Fault{OversizeBytes: size, Times: 1})
	r = registerTask(t, c, s, k, "agent-123", "", t0)
	if r.status != 200 || len(r.body) != size || !strings.HasPrefix(string(r.body), `{"padding":"xxx`) || !strings.HasSuffix(string(r.body), `x"}`) {
		t.Errorf("OversizeBytes: %d, %d bytes", r.status, len(r.body))
	}
	if st := s.Stats(); st.FaultsServed != 6 || st.TaskRegistrations != 0 || len(s.Tasks()) != 0 {
		t.Errorf("faults registered tasks: %+v", st)
	}
	if got := string(oversizeBody(5)); got != "xxxxx" {
		t.Errorf("oversizeBody(5) = %q", got)
	}
}

func TestFaultDropConnection(t *testing.T) {
	s, _ := newTestServer(t, Options{AllowAnonymous: true})
	c := newClient(t)
	s.InjectFault(RouteResource, Fault{DropConnection: true, Times: 1})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/responses", strings.NewReader("x"))
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped connection answered %d", resp.StatusCode)
	}
	if r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", nil, nil); r.status != 200 {
		t.Errorf("after the drop: %d", r.status)
	}
	if st := s.Stats(); st.FaultsServed != 1 || st.RequestsByMode[ModeNone] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultLatencyThenNormalAnswer(t *testing.T) {
	s, _ := newTestServer(t, Options{AllowAnonymous: true})
	c := newClient(t)
	const d = 50 * time.Millisecond
	s.InjectFault(RouteResource, Fault{Latency: d, RetryAfter: "7", Times: 1})
	start := time.Now()
	r := do(t, c, http.MethodGet, s.URL()+"/v1/x", nil, nil)
	if el := time.Since(start); el < d {
		t.Errorf("answered after %v, want at least %v", el, d)
	}
	if e := decodeEcho(t, r); e.Mode != ModeNone || r.header.Get("Retry-After") != "7" {
		t.Errorf("latency fault changed the answer: %+v %v", e, r.header)
	}
}

func TestFaultHangEndsWhenClientGivesUp(t *testing.T) {
	logger, faults := faultSignal()
	s, _ := newTestServer(t, Options{AllowAnonymous: true, Logger: logger})
	c := newClient(t)
	s.InjectFault(RouteResource, Fault{Hang: true, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/v1/x", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-faults // the handler is hanging now
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("hung request ended with %v, want context.Canceled", err)
	}
	if r := do(t, c, http.MethodGet, s.URL()+"/v1/x", nil, nil); r.status != 200 {
		t.Errorf("after the hang: %d", r.status)
	}
}

// TestCloseEndsHungAndDelayedRequests: Close must return promptly and leave
// no goroutine even while a handler hangs and another sleeps for an hour.
func TestCloseEndsHungAndDelayedRequests(t *testing.T) {
	logger, faults := faultSignal()
	s, err := NewServer(Options{AllowAnonymous: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	s.InjectFault(RouteResource, Fault{Hang: true})
	s.InjectFault(RouteJWKS, Fault{Latency: time.Hour})
	errc := make(chan error, 2)
	for _, p := range []string{"/v1/x", "/agent-identities/jwks"} {
		go func() {
			resp, err := c.Get(s.URL() + p)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
	}
	<-faults
	<-faults
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with requests in flight")
	}
	for range 2 {
		if err := <-errc; err == nil {
			t.Error("a request in flight at Close got an answer")
		}
	}
	s.Close() // idempotent
	c.Transport.(*http.Transport).CloseIdleConnections()
	goleak.VerifyNone(t) // Close itself left nothing running
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/x", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("Handler after Close: %d, want 503", rec.Code)
	}
}

func TestInjectFaultRejectsBadFaults(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	bad := map[string]func(){
		"unknown route":    func() { s.InjectFault("nope", Fault{Status: 500}) },
		"status 42":        func() { s.InjectFault(RouteResource, Fault{Status: 42}) },
		"status 1000":      func() { s.InjectFault(RouteResource, Fault{Status: 1000}) },
		"negative times":   func() { s.InjectFault(RouteResource, Fault{Status: 500, Times: -1}) },
		"hang and drop":    func() { s.InjectFault(RouteResource, Fault{Hang: true, DropConnection: true}) },
		"body and empty":   func() { s.InjectFault(RouteTaskRegister, Fault{Body: []byte("x"), EmptyTaskID: true}) },
		"header break":     func() { s.InjectFault(RouteResource, Fault{Status: 503, RetryAfter: "1\r\nX: y"}) },
		"negative size":    func() { s.InjectFault(RouteResource, Fault{OversizeBytes: -1}) },
		"negative latency": func() { s.InjectFault(RouteResource, Fault{Latency: -time.Second}) },
	}
	for name, f := range bad {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []Options{
		{MaxSkew: -time.Second},
		{AccessTokens: []string{""}},
		{APIKeys: []string{"sk-\nsecret"}},
	}
	for _, o := range bad {
		s, err := NewServer(o)
		if err == nil {
			s.Close()
			t.Errorf("NewServer accepted %+v", o)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error quotes the token: %v", err)
		}
	}
	if _, err := NewServer(Options{Addr: "127.0.0.1:notaport"}); err == nil {
		t.Error("bad address accepted")
	}
}

func TestURLAndDisplayAddr(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || strings.HasSuffix(s.URL(), "/") {
		t.Errorf("URL() = %q", s.URL())
	}
	cases := map[string]string{
		"0.0.0.0:80":   "127.0.0.1:80",
		"[::]:80":      "[::1]:80",
		"10.1.2.3:443": "10.1.2.3:443",
	}
	for in, want := range cases {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := displayAddr(a); got != want {
			t.Errorf("displayAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
