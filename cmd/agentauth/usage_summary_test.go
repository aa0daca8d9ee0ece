package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestUsageSummary(t *testing.T) {
	body := `{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1767225600}}`
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}}
	for k, v := range map[string]string{
		"x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300", "x-codex-primary-reset-at": "1767225600",
		"x-codex-credits-has-credits": "false", "x-codex-credits-unlimited": "false",
		"x-codex-active-limit": "codex", "x-codex-rate-limit-reached-type": "primary", "x-codex-promo-message": "upgrade\nnow",
	} {
		resp.Header.Set(k, v)
	}
	got := usageSummary(resp)
	for _, want := range []string{
		"* usage: codex primary window: 100% used of 300 min, resets 2026-01-01T00:00:00Z\n",
		"* usage: credits: has credits false, unlimited false\n",
		"* usage: limit hit: codex primary\n",
		"* usage: usage_limit_reached (plan plus); resets at 2026-01-01T00:00:00Z\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "upgrade\nnow") {
		t.Errorf("a header value broke a line:\n%s", got)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != body {
		t.Errorf("body after the summary: %q", b)
	}
	if s := usageSummary(&http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}); s != "" {
		t.Errorf("summary of a response without usage: %q", s)
	}
}
