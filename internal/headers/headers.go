// Package headers names the HTTP headers agentauth reads and writes, builds
// the account and FedRAMP routing headers, rejects values that could split a
// header (CR, LF and other control characters), and redacts credentials for
// display.
package headers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Header names, in canonical form.
const (
	Authorization    = "Authorization"
	ChatGPTAccountID = "Chatgpt-Account-Id" // canonical form of ChatGPT-Account-ID
	OpenAIFedRAMP    = "X-Openai-Fedramp"   // canonical form of X-OpenAI-Fedramp
)

// FedRAMPValue is the only value sent in [OpenAIFedRAMP].
const FedRAMPValue = "true"

// Authorization schemes.
const (
	SchemeBearer         = "Bearer"
	SchemeAgentAssertion = "AgentAssertion"
)

// ErrInvalidValue is wrapped by every validation error. The error text names
// the header and the offending byte position, never the value.
var ErrInvalidValue = errors.New("headers: invalid header value")

// ValidateValue reports an error when v contains a byte that must not appear
// in a header value: CR, LF, NUL, any other C0 control character, or DEL.
// Horizontal tab is allowed, as RFC 9110 allows it.
func ValidateValue(name, v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("%w: %s has a control character at byte %d", ErrInvalidValue, name, i)
		}
	}
	return nil
}

// Routing is the account routing that survives the switch from Bearer to
// AgentAssertion.
type Routing struct {
	AccountID string // sent as ChatGPT-Account-ID when non-empty
	FedRAMP   bool   // sends X-OpenAI-Fedramp: true when set
}

// Validate checks that the routing values can be sent.
func (r Routing) Validate() error {
	return ValidateValue("ChatGPT-Account-ID", r.AccountID)
}

// Apply sets the routing headers on h, replacing any values already there,
// and removes a FedRAMP header the caller set when the account is not a
// FedRAMP account. Values must have passed [Routing.Validate].
func (r Routing) Apply(h http.Header) {
	if r.AccountID != "" {
		h[ChatGPTAccountID] = []string{r.AccountID}
	}
	if r.FedRAMP {
		h[OpenAIFedRAMP] = []string{FedRAMPValue}
	} else {
		delete(h, OpenAIFedRAMP)
	}
}

// Bearer returns "Bearer " + token after validating the token.
func Bearer(token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalidValue)
	}
	if err := ValidateValue(Authorization, token); err != nil {
		return "", err
	}
	return SchemeBearer + " " + token, nil
}

// Redact returns a display form of a header value: for Authorization (and
// any other name that IsSensitive) only the scheme survives, as in
// "Bearer [REDACTED]"; other values are returned unchanged.
func Redact(name, value string) string {
	if !IsSensitive(name) {
		return value
	}
	if scheme, _, ok := strings.Cut(value, " "); ok && scheme != "" && !strings.ContainsAny(scheme, "=.") {
		return scheme + " [REDACTED]"
	}
	return "[REDACTED]"
}

// IsSensitive reports whether a header carries a credential.
func IsSensitive(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case Authorization, "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "Openai-Api-Key":
		return true
	}
	return false
}

// RedactAll returns a copy of h with every sensitive value redacted.
func RedactAll(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		cp := make([]string, len(vs))
		for i, v := range vs {
			cp[i] = Redact(k, v)
		}
		out[k] = cp
	}
	return out
}
