package identity

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Secret is a credential held as text, such as a ChatGPT access token. It
// redacts itself in every fmt verb (%v, %+v, %#v, %s, %q), in log/slog and
// in JSON, so a struct holding one in an exported field is safe to print,
// log and marshal without redaction methods of its own. Reveal returns the
// text for the one place that sends it.
//
// An empty Secret prints as "" (there is nothing to hide, and "unset" stays
// visible); any other prints as "[REDACTED]".
type Secret string

// Reveal returns the secret's text.
func (s Secret) Reveal() string { return string(s) }

// String returns "[REDACTED]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}

// GoString is [Secret.String].
func (s Secret) GoString() string { return s.String() }

// Format makes every fmt verb print [Secret.String].
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue logs [Secret.String].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes [Secret.String]. Decoding a JSON string into a Secret
// needs no method: it is a string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
