package usage_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/usage"
)

func limit429(body string) *http.Response {
	return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
}

// A 429 body of a usage limit fills LimitReached, LimitResetsAt and
// PlanType; any other 429 body is a plain rate limit and says nothing.
func TestUsageLimit429Body(t *testing.T) {
	s := usage.FromResponse(limit429(`{"error":{"type":"usage_limit_reached","plan_type":"pro","message":"x","resets_at":1767225600}}`))
	if s.LimitReached != "usage_limit_reached" || s.PlanType != "pro" || !s.LimitResetsAt.Equal(time.Unix(1767225600, 0)) || s.Empty() {
		t.Fatalf("usage_limit_reached = %+v", s)
	}
	if s := usage.FromResponse(limit429(`{"error":{"type":"usage_not_included"}}`)); s.LimitReached != "usage_not_included" || !s.LimitResetsAt.IsZero() {
		t.Errorf("usage_not_included = %+v", s)
	}
	for _, plain := range []string{``, `rate limited`, `{"error":"too_many"}`, `{"error":{"type":"rate_limit_exceeded"}}`,
		`{"error":{"type":"usage_limit_reached","resets_at":"soon"}}`, `{"error":{"type":"usage_limit_reached","resets_at":1.5}}`} {
		if s := usage.FromResponse(limit429(plain)); !s.Empty() {
			t.Errorf("%q is a plain rate limit, got %+v", plain, s)
		}
	}
	// The same body on another status is not read.
	resp := limit429(`{"error":{"type":"usage_limit_reached"}}`)
	resp.StatusCode = http.StatusBadRequest
	if s := usage.FromResponse(resp); !s.Empty() {
		t.Errorf("400 with a limit body = %+v", s)
	}
}

type closeCount struct {
	io.Reader
	closes int
}

func (c *closeCount) Close() error { c.closes++; return nil }

// FromResponse reads a 429's body ahead and puts it back whole; closing the
// response closes the original body once.
func TestFromResponsePutsTheBodyBack(t *testing.T) {
	body := `{"error":{"type":"usage_limit_reached","resets_at":100}}` + strings.Repeat(" ", 70<<10) + "end"
	orig := &closeCount{Reader: strings.NewReader(body)}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Body: orig,
		Header: header("x-codex-primary-used-percent", "100", "x-codex-active-limit", "codex")}
	s := usage.FromResponse(resp)
	if s.LimitReached == "" || !s.LimitResetsAt.Equal(time.Unix(100, 0)) || s.ActiveLimit != "codex" || len(s.Limits) != 1 {
		t.Errorf("429 with a long body: %+v", s)
	}
	got, _ := io.ReadAll(resp.Body)
	if string(got) != body {
		t.Errorf("body read back has %d bytes, want %d", len(got), len(body))
	}
	resp.Body.Close()
	if orig.closes != 1 {
		t.Errorf("original body closed %d times", orig.closes)
	}

	short := `{"error":{"type":"usage_limit_reached","resets_at":100}}`
	resp = limit429(short)
	if s := usage.FromResponse(resp); !s.LimitResetsAt.Equal(time.Unix(100, 0)) {
		t.Errorf("short 429 = %+v", s)
	}
	if got, _ := io.ReadAll(resp.Body); string(got) != short {
		t.Errorf("short body read back as %q", got)
	}
	// Other statuses keep their body untouched.
	ok := &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}
	if s := usage.FromResponse(ok); !s.Empty() || ok.Body != http.NoBody {
		t.Errorf("200: %+v, body %T", s, ok.Body)
	}
}
