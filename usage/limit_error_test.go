package usage_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/usage"
)

func TestParseLimitError(t *testing.T) {
	e := usage.ParseLimitError([]byte(`{"error":{"type":"usage_limit_reached","plan_type":"pro","message":"x","resets_at":1767225600}}`))
	if e == nil || e.Type != usage.TypeUsageLimitReached || e.PlanType != "pro" || !e.ResetsAt.Equal(time.Unix(1767225600, 0)) {
		t.Fatalf("usage_limit_reached = %+v", e)
	}
	if want := "usage: usage_limit_reached (plan pro); resets at 2026-01-01T00:00:00Z"; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	if e := usage.ParseLimitError([]byte(`{"error":{"type":"usage_not_included"}}`)); e == nil || e.Type != usage.TypeUsageNotIncluded || !e.ResetsAt.IsZero() {
		t.Errorf("usage_not_included = %+v", e)
	}
	for _, plain := range []string{``, `rate limited`, `{"error":"too_many"}`, `{"error":{"type":"rate_limit_exceeded"}}`,
		`{"error":{"type":"usage_limit_reached","resets_at":"soon"}}`, `{"error":{"type":"usage_limit_reached","resets_at":1.5}}`} {
		if e := usage.ParseLimitError([]byte(plain)); e != nil {
			t.Errorf("%q is a plain rate limit, got %+v", plain, e)
		}
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
	s, le := usage.FromResponse(resp)
	if le == nil || !le.ResetsAt.Equal(time.Unix(100, 0)) || le.Usage.ActiveLimit != "codex" || len(s.Limits) != 1 {
		t.Errorf("429 with a long body: %+v %+v", s, le)
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
	resp = &http.Response{StatusCode: http.StatusTooManyRequests, Body: io.NopCloser(strings.NewReader(short)), Header: http.Header{}}
	if _, le := usage.FromResponse(resp); le == nil || !le.ResetsAt.Equal(time.Unix(100, 0)) {
		t.Errorf("short 429 = %+v", le)
	}
	if got, _ := io.ReadAll(resp.Body); string(got) != short {
		t.Errorf("short body read back as %q", got)
	}
	// Other statuses keep their body untouched.
	ok := &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}
	if _, le := usage.FromResponse(ok); le != nil || ok.Body != http.NoBody {
		t.Errorf("200: %+v, body %T", le, ok.Body)
	}
}
