package headers

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidateValue(t *testing.T) {
	for _, bad := range []string{"a\rb", "a\nb", "a\x00b", "\x1b[31m", "x\x7f"} {
		err := ValidateValue("X", bad)
		if !errors.Is(err, ErrInvalidValue) {
			t.Errorf("ValidateValue(%q) = %v, want ErrInvalidValue", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("error repeats the value: %v", err)
		}
	}
	for _, good := range []string{"", "acct-1", "a\tb", "ünïcödé", "<&>"} {
		if err := ValidateValue("X", good); err != nil {
			t.Errorf("ValidateValue(%q) = %v", good, err)
		}
	}
}

func TestRoutingApply(t *testing.T) {
	h := http.Header{}
	h.Set("X-OpenAI-Fedramp", "true")
	Routing{AccountID: "acct-1"}.Apply(h)
	if got := h.Get("ChatGPT-Account-ID"); got != "acct-1" {
		t.Errorf("account = %q", got)
	}
	if _, ok := h[OpenAIFedRAMP]; ok {
		t.Error("a caller-set FedRAMP header survived for a non-FedRAMP account")
	}
	Routing{AccountID: "acct-2", FedRAMP: true}.Apply(h)
	if h.Get("ChatGPT-Account-ID") != "acct-2" || h.Get("X-OpenAI-Fedramp") != "true" || len(h[ChatGPTAccountID]) != 1 {
		t.Errorf("headers = %v", h)
	}
	empty := http.Header{}
	Routing{}.Apply(empty)
	if len(empty) != 0 {
		t.Errorf("empty routing added %v", empty)
	}
	if err := (Routing{AccountID: "a\r\nX-Evil: 1"}).Validate(); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Validate = %v", err)
	}
}

func TestBearerAndRedact(t *testing.T) {
	v, err := Bearer("tok-secret")
	if err != nil || v != "Bearer tok-secret" {
		t.Fatalf("Bearer = %q, %v", v, err)
	}
	if _, err := Bearer("tok\nsecret"); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Bearer with LF = %v", err)
	}
	if _, err := Bearer(""); err == nil {
		t.Error("empty token accepted")
	}
	cases := map[string]string{
		"Bearer tok-secret":       "Bearer [REDACTED]",
		"AgentAssertion eyJhbGci": "AgentAssertion [REDACTED]",
		"tok-secret":              "[REDACTED]",
		"abc= def":                "[REDACTED]",
	}
	for in, want := range cases {
		if got := Redact("authorization", in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Redact("Accept", "text/plain"); got != "text/plain" {
		t.Errorf("Redact(Accept) = %q", got)
	}
	h := http.Header{"Authorization": {"Bearer s3cret"}, "Accept": {"a"}}
	r := RedactAll(h)
	if strings.Contains(r.Get("Authorization"), "s3cret") || h.Get("Authorization") != "Bearer s3cret" || r.Get("Accept") != "a" {
		t.Errorf("RedactAll = %v (input now %v)", r, h)
	}
}
