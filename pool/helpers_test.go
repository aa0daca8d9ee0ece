package pool_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/pool"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stub is a member transport that answers from a function, closes every
// body it is given and counts what it saw.
type stub struct {
	name   string
	answer func(req *http.Request) (*http.Response, error)
	calls  atomic.Int64
	idle   atomic.Int64
	mu     sync.Mutex
	bodies []string
}

func (s *stub) RoundTrip(req *http.Request) (*http.Response, error) {
	s.calls.Add(1)
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, string(body))
	s.mu.Unlock()
	if s.answer != nil {
		return s.answer(req)
	}
	return ok(nil), nil
}

func (s *stub) CloseIdleConnections() { s.idle.Add(1) }

func ok(h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(nil))}
}

func nopBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func used(p float64) http.Header {
	return http.Header{"X-Codex-Primary-Used-Percent": {strconv.FormatFloat(p, 'f', -1, 64)}}
}

// limitReached is the 429 of a login at its usage limit until reset.
func limitReached(reset time.Time) *http.Response {
	body := `{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":` + strconv.FormatInt(reset.Unix(), 10) + `}}`
	return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(body)))}
}

func newPool(t *testing.T, c *clock, stubs ...*stub) *pool.Pool {
	t.Helper()
	var ms []pool.Member
	for _, s := range stubs {
		ms = append(ms, pool.Member{Name: s.name, Transport: s})
	}
	p, err := pool.NewWithClock(pool.Options{Logger: slog.New(slog.DiscardHandler)}, c.Now, ms...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, p http.RoundTripper, ctx context.Context) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://chatgpt.com/backend-api/codex/responses", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}
