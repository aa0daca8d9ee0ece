package usage_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/usage"
)

func checkSnapshot(t *testing.T, s usage.Snapshot) {
	t.Helper()
	if len(s.Limits) > 16 {
		t.Fatalf("%d limits", len(s.Limits))
	}
	for _, l := range s.Limits {
		if l.ID == "" || l.Primary == nil && l.Secondary == nil {
			t.Fatalf("limit %+v", l)
		}
		for _, w := range []*usage.Window{l.Primary, l.Secondary} {
			if w != nil && (math.IsNaN(w.UsedPercent) || math.IsInf(w.UsedPercent, 0)) {
				t.Fatalf("window %+v", w)
			}
		}
	}
}

// FuzzFromHeader: any header names and values parse without panicking into
// a bounded snapshot whose windows are finite.
func FuzzFromHeader(f *testing.F) {
	f.Add("x-codex-primary-used-percent", "12.5", "x-codex-primary-reset-at", "1704069000")
	f.Add("x-codex-other-primary-used-percent", "80", "x-codex-other-limit-name", "other")
	f.Add("x-codex-credits-has-credits", "1", "x-codex-credits-unlimited", "false")
	f.Add("x--primary-used-percent", "1e308", "x-codex-secondary-used-percent", "-0")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{k1: {v1}, k2: {v2}}
		s := usage.FromHeader(h)
		checkSnapshot(t, s)
	})
}

// FuzzParseEvent: any payload is an event, another type (nothing) or
// malformed.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"codex.rate_limits","plan_type":"plus","rate_limits":{"primary":{"used_percent":42,"window_minutes":300,"reset_at":1767225600}},"credits":{"has_credits":true,"unlimited":false,"balance":"1"}}`))
	f.Add([]byte(`{"type":"codex.rate_limits","metered_limit_name":"codex-x","rate_limits":{"secondary":{"used_percent":1}}}`))
	f.Add([]byte(`{"type":"response.completed"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := usage.ParseEvent(data)
		if err != nil {
			if !errors.Is(err, usage.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			if !s.Empty() {
				t.Fatalf("error with a snapshot %+v", s)
			}
			return
		}
		if len(s.Limits) > 1 {
			t.Fatalf("%d limits from one event", len(s.Limits))
		}
	})
}

// FuzzFromResponse: any 429 body is a usage limit of a known kind or a
// plain rate limit, and is put back whole.
func FuzzFromResponse(f *testing.F) {
	f.Add([]byte(`{"error":{"type":"usage_limit_reached","plan_type":"pro","resets_at":1767225600}}`))
	f.Add([]byte(`{"error":{"type":"usage_not_included"}}`))
	f.Add([]byte(`{"error":"rate_limited"}`))
	f.Add([]byte(`{"error":{"type":"usage_limit_reached","resets_at":-9223372036854775808}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		s := usage.FromResponse(resp)
		if s.LimitReached != "" && s.LimitReached != "usage_limit_reached" && s.LimitReached != "usage_not_included" {
			t.Fatalf("type %q", s.LimitReached)
		}
		if got, _ := io.ReadAll(resp.Body); !bytes.Equal(got, body) {
			t.Fatalf("body put back as %q", got)
		}
	})
}
