package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
)

const testAccessToken = "eyJhbGciOi.access-token-secret.sig"

// zeroReader makes the backoff jitter 0, i.e. the shortest wait.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// sleepRecorder is a Sleep hook that records the waits and returns at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// scripted answers the n-th request with steps[n] (the last step repeats)
// and counts requests.
type scripted struct {
	hits  atomic.Int32
	steps []http.HandlerFunc
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.hits.Add(1)) - 1
	s.steps[min(n, len(s.steps)-1)](w, r)
}

func agentReq() AgentRegistration {
	return AgentRegistration{
		AccessToken: testAccessToken,
		Routing:     headers.Routing{AccountID: "acct-1"},
		PublicKey:   vecSSH,
	}
}

func agentClient(t *testing.T, h http.Handler) (*Client, *sleepRecorder) {
	t.Helper()
	srv := testServer(t, h.ServeHTTP)
	rec := &sleepRecorder{}
	c := testClient(srv)
	c.Sleep = rec.Sleep
	c.Rand = zeroReader{}
	return c, rec
}

func TestRegisterAgentRequest(t *testing.T) {
	tests := []struct {
		name     string
		req      AgentRegistration
		wantBody string
	}{
		{
			name:     "defaults",
			req:      agentReq(),
			wantBody: `{"abom":{"agent_version":"agentauth/0.1.0","agent_harness_id":"codex-cli","running_location":"` + RunningLocation() + `"},"agent_public_key":"` + vecSSH + `","capabilities":["responsesapi"],"ttl":null}`,
		},
		{
			name: "custom abom, FedRAMP",
			req: func() AgentRegistration {
				r := agentReq()
				r.Routing.FedRAMP = true
				r.AgentVersion, r.HarnessID, r.RunningLocation = "v<2>", "codex-app", "vscode-darwin"
				return r
			}(),
			wantBody: `{"abom":{"agent_version":"v<2>","agent_harness_id":"codex-app","running_location":"vscode-darwin"},"agent_public_key":"` + vecSSH + `","capabilities":["responsesapi"],"ttl":null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, reqs := capture(`{"agent_runtime_id":"rt-1"}`)
			c, _ := agentClient(t, h)
			id, err := c.RegisterAgent(context.Background(), tt.req)
			if err != nil || id != "rt-1" {
				t.Fatalf("RegisterAgent = %q, %v", id, err)
			}
			req := <-reqs
			if req.method != http.MethodPost || req.requestURI != "/api/accounts/v1/agent/register" {
				t.Errorf("request = %s %s", req.method, req.requestURI)
			}
			if got := req.header.Get("Authorization"); got != "Bearer "+testAccessToken {
				t.Errorf("Authorization = %q", got)
			}
			// Current Codex sends no account header on agent
			// registration: the AuthAPI reads the account from the token.
			if v, ok := req.header["Chatgpt-Account-Id"]; ok {
				t.Errorf("ChatGPT-Account-ID sent: %q", v)
			}
			fed, ok := req.header["X-Openai-Fedramp"]
			if tt.req.Routing.FedRAMP && (len(fed) != 1 || fed[0] != "true") {
				t.Errorf("X-OpenAI-Fedramp = %q, want [true]", fed)
			}
			if !tt.req.Routing.FedRAMP && ok {
				t.Errorf("non-FedRAMP account sent X-OpenAI-Fedramp %q", fed)
			}
			if ct := req.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if string(req.body) != tt.wantBody {
				t.Errorf("body =\n%s\nwant\n%s", req.body, tt.wantBody)
			}
		})
	}
}

func TestRegisterAgentNoAccountHeaderWithoutAccount(t *testing.T) {
	h, reqs := capture(`{"agent_runtime_id":"rt-1"}`)
	c, _ := agentClient(t, h)
	r := agentReq()
	r.Routing = headers.Routing{}
	if _, err := c.RegisterAgent(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if v, ok := req.header["Chatgpt-Account-Id"]; ok {
		t.Errorf("ChatGPT-Account-ID sent without an account: %q", v)
	}
}

func TestRegisterAgentRetries(t *testing.T) {
	status := func(code int, hdr ...string) http.HandlerFunc { return respond(code, "unavailable", hdr...) }
	ok := respond(200, `{"agent_runtime_id":"rt-ok"}`)
	tests := []struct {
		name      string
		steps     []http.HandlerFunc
		attempts  int // Client.AgentAttempts
		wantID    string
		wantHits  int32
		wantWaits []time.Duration
		wantCode  int
		temporary bool
	}{
		{name: "503,503,200 succeeds on the third attempt", steps: []http.HandlerFunc{status(503), status(503), ok},
			wantID: "rt-ok", wantHits: 3, wantWaits: []time.Duration{125 * time.Millisecond, 250 * time.Millisecond}},
		{name: "503 x3 gives up after exactly 3", steps: []http.HandlerFunc{status(503)},
			wantHits: 3, wantWaits: []time.Duration{125 * time.Millisecond, 250 * time.Millisecond}, wantCode: 503, temporary: true},
		{name: "403 is permanent: one attempt", steps: []http.HandlerFunc{status(403)},
			wantHits: 1, wantCode: 403},
		{name: "400 is permanent", steps: []http.HandlerFunc{status(400), ok},
			wantHits: 1, wantCode: 400},
		{name: "429 honours Retry-After", steps: []http.HandlerFunc{status(429, "Retry-After", "2"), ok},
			wantID: "rt-ok", wantHits: 2, wantWaits: []time.Duration{2 * time.Second}},
		{name: "Retry-After is capped", steps: []http.HandlerFunc{status(503, "Retry-After", "3600"), ok},
			wantID: "rt-ok", wantHits: 2, wantWaits: []time.Duration{MaxRetryWait}},
		{name: "AgentAttempts 1 disables retries", steps: []http.HandlerFunc{status(500), ok}, attempts: 1,
			wantHits: 1, wantCode: 500, temporary: true},
		{name: "AgentAttempts 5", steps: []http.HandlerFunc{status(502)}, attempts: 5,
			wantHits: 5, wantCode: 502, temporary: true,
			wantWaits: []time.Duration{125 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second}},
		{name: "missing runtime id is permanent", steps: []http.HandlerFunc{respond(200, `{}`), ok},
			wantHits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{steps: tt.steps}
			c, rec := agentClient(t, s)
			c.AgentAttempts = tt.attempts
			id, err := c.RegisterAgent(context.Background(), agentReq())
			if id != tt.wantID {
				t.Errorf("runtime id = %q, want %q (err %v)", id, tt.wantID, err)
			}
			if got := s.hits.Load(); got != tt.wantHits {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantHits)
			}
			if got := rec.Waits(); !equalDurations(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			if tt.wantID != "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var re *RegistrationError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RegistrationError", err)
			}
			if re.Op != OpAgentRegistration || re.StatusCode != tt.wantCode || re.Attempts != int(tt.wantHits) || re.Temporary() != tt.temporary {
				t.Errorf("got Op=%q StatusCode=%d Attempts=%d Temporary=%v, want %d %d %v",
					re.Op, re.StatusCode, re.Attempts, re.Temporary(), tt.wantCode, tt.wantHits, tt.temporary)
			}
			assertNoSecrets(t, err, testAccessToken)
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
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

func TestRegisterAgentAttemptTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	s := &scripted{steps: []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		},
		respond(200, `{"agent_runtime_id":"rt-2"}`),
	}}
	c, _ := agentClient(t, s)
	t.Cleanup(func() { close(release) })
	c.AgentTimeout = 100 * time.Millisecond
	id, err := c.RegisterAgent(context.Background(), agentReq())
	if err != nil || id != "rt-2" {
		t.Fatalf("RegisterAgent = %q, %v", id, err)
	}
	if s.hits.Load() != 2 {
		t.Errorf("attempts = %d, want 2", s.hits.Load())
	}
}

func TestRegisterAgentCanceledDuringBackoff(t *testing.T) {
	t.Run("sleep hook", func(t *testing.T) {
		s := &scripted{steps: []http.HandlerFunc{respond(503, "down")}}
		c, _ := agentClient(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel() // the caller gives up while we wait
			<-ctx.Done()
			return ctx.Err()
		}
		_, err := c.RegisterAgent(ctx, agentReq())
		checkCanceledAfterOneAttempt(t, err, s)
	})
	t.Run("real timer", func(t *testing.T) {
		s := &scripted{steps: []http.HandlerFunc{respond(503, "down")}}
		c, _ := agentClient(t, s)
		c.Sleep = nil
		c.AgentRetryBackoff = time.Hour // capped to MaxRetryWait: at least 2.5 s
		// The jitter is drawn right before the wait starts, so the caller
		// gives up while (or just before) the timer runs.
		backingOff := make(chan struct{}, 1)
		c.Rand = signalReader{backingOff}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-backingOff
			cancel()
		}()
		start := time.Now()
		_, err := c.RegisterAgent(ctx, agentReq())
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("RegisterAgent returned %v after cancel; the backoff was not interrupted", elapsed)
		}
		checkCanceledAfterOneAttempt(t, err, s)
		if !strings.Contains(err.Error(), "stopped waiting to retry (last attempt got status 503)") {
			t.Errorf("error text %q does not explain the cancel during backoff", err)
		}
	})
}

// signalReader reports every read (a jitter draw) and yields zeros.
type signalReader struct{ ch chan<- struct{} }

func (r signalReader) Read(p []byte) (int, error) {
	select {
	case r.ch <- struct{}{}:
	default:
	}
	clear(p)
	return len(p), nil
}

func checkCanceledAfterOneAttempt(t *testing.T, err error, s *scripted) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var re *RegistrationError
	if !errors.As(err, &re) || re.Temporary() {
		t.Errorf("canceled caller: want a permanent *RegistrationError, got %v", err)
	}
	if s.hits.Load() != 1 {
		t.Errorf("attempts = %d, want 1", s.hits.Load())
	}
}

func TestRegisterAgentRejectsBadInputBeforeNetwork(t *testing.T) {
	s := &scripted{steps: []http.HandlerFunc{respond(200, `{"agent_runtime_id":"rt"}`)}}
	c, _ := agentClient(t, s)
	tests := []struct {
		name   string
		mutate func(*AgentRegistration)
	}{
		{"empty token", func(r *AgentRegistration) { r.AccessToken = "" }},
		{"token with newline", func(r *AgentRegistration) { r.AccessToken = testAccessToken + "\r\nX-Evil: 1" }},
		{"account id with CR", func(r *AgentRegistration) { r.Routing.AccountID = "a\rb" }},
		{"bad public key", func(r *AgentRegistration) { r.PublicKey = "ssh-rsa AAAA" }},
		{"empty public key", func(r *AgentRegistration) { r.PublicKey = "" }},
		{"invalid UTF-8 abom", func(r *AgentRegistration) { r.HarnessID = "\xff" }},
	}
	for _, tt := range tests {
		req := agentReq()
		tt.mutate(&req)
		_, err := c.RegisterAgent(context.Background(), req)
		var re *RegistrationError
		if !errors.As(err, &re) || re.Temporary() {
			t.Errorf("%s: want a permanent *RegistrationError, got %v", tt.name, err)
		}
		assertNoSecrets(t, err, testAccessToken)
	}
	if s.hits.Load() != 0 {
		t.Errorf("bad input reached the server %d times", s.hits.Load())
	}
}

func TestRegisterAgentErrorNeverShowsToken(t *testing.T) {
	// A server that echoes the Authorization header in its error body.
	s := &scripted{steps: []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"bad token `+r.Header.Get("Authorization")+`"}`)
	}}}
	c, _ := agentClient(t, s)
	_, err := c.RegisterAgent(context.Background(), agentReq())
	if err == nil || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("want an error with the echoed token redacted, got %v", err)
	}
	assertNoSecrets(t, err, testAccessToken)
}

func TestAgentRegistrationRedacts(t *testing.T) {
	r := agentReq()
	for _, out := range fmtAll(r) {
		if strings.Contains(out, testAccessToken) {
			t.Errorf("AgentRegistration output leaks the token: %s", out)
		}
	}
	if out := fmt.Sprintf("%+v", r); !strings.Contains(out, "acct-1") {
		t.Errorf("%%+v lost the non-secret fields: %s", out)
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{Rand: zeroReader{}}
	for n, want := range map[int]time.Duration{1: 125 * time.Millisecond, 2: 250 * time.Millisecond, 3: 500 * time.Millisecond, 10: MaxRetryWait / 2, 1000: MaxRetryWait / 2} {
		if got := c.backoff(n, 0); got != want {
			t.Errorf("backoff(%d) with zero jitter = %v, want %v", n, got, want)
		}
	}
	c.Rand = bytes.NewReader(bytes.Repeat([]byte{0xff}, 8))
	if got := c.backoff(1, 0); got < 249*time.Millisecond || got > 250*time.Millisecond {
		t.Errorf("backoff(1) with maximal jitter = %v, want ~250ms", got)
	}
	c.Rand = bytes.NewReader(nil) // a failing source gives the longer wait
	if got := c.backoff(2, 0); got != 500*time.Millisecond {
		t.Errorf("backoff(2) without randomness = %v, want 500ms", got)
	}
	c.Rand = nil // crypto/rand stays within the window
	for range 100 {
		if got := c.backoff(1, 0); got < 125*time.Millisecond || got > 250*time.Millisecond {
			t.Fatalf("backoff(1) = %v outside [125ms, 250ms]", got)
		}
	}
	if got := c.backoff(1, 3*time.Second); got != 3*time.Second {
		t.Errorf("backoff with Retry-After 3s = %v", got)
	}
}
