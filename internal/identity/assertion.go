package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// AssertionScheme is the Authorization scheme of an Agent Identity request.
const AssertionScheme = "AgentAssertion"

// timestampLayout is the wire format of every timestamp: UTC, whole seconds,
// literal Z.
const timestampLayout = "2006-01-02T15:04:05Z"

// ErrInvalidAssertion is wrapped by every error from [ParseAssertion] and
// [Assertion.Verify].
var ErrInvalidAssertion = errors.New("identity: invalid agent assertion")

// FormatTimestamp formats t as the protocol does: UTC, truncated to whole
// seconds, with a literal Z.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(timestampLayout)
}

// ParseTimestamp parses a timestamp in exactly the wire form (UTC, whole seconds, literal Z).
func ParseTimestamp(s string) (time.Time, error) {
	t, err := time.Parse(timestampLayout, s)
	if err != nil || FormatTimestamp(t) != s {
		return time.Time{}, fmt.Errorf("identity: timestamp %q is not RFC 3339 UTC whole seconds", truncateForError(s))
	}
	return t, nil
}

// SignAssertion returns the Authorization header value
// "AgentAssertion <token>" for runtimeID and taskID at the second of at.
//
// It is a pure function: Ed25519 is deterministic, so the same inputs in the
// same second give a byte-identical header. The envelope is compact JSON
// with keys in the order agent_runtime_id, signature, task_id, timestamp and
// strings escaped exactly as serde_json does. Ids must be valid UTF-8 and at
// must fall in the years 0000-9999 that an RFC 3339 timestamp can carry.
// The result is a secret.
func SignAssertion(k *PrivateKey, runtimeID, taskID string, at time.Time) (string, error) {
	if k == nil {
		return "", fmt.Errorf("%w: nil key", ErrInvalidKey)
	}
	if !utf8.ValidString(runtimeID) || !utf8.ValidString(taskID) {
		return "", fmt.Errorf("%w: runtime and task ids must be valid UTF-8", ErrInvalidAssertion)
	}
	// RFC 3339 has four-digit years; outside them the header would be one
	// that ParseTimestamp, and so every verifier, rejects.
	if y := at.UTC().Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("%w: time is outside the years 0000-9999 of RFC 3339", ErrInvalidAssertion)
	}
	ts := FormatTimestamp(at)
	sig := base64.StdEncoding.EncodeToString(k.Sign([]byte(runtimeID + ":" + taskID + ":" + ts)))

	env := make([]byte, 0, 96+len(runtimeID)+len(sig)+len(taskID)+len(ts))
	env = append(env, `{"agent_runtime_id":`...)
	env = appendSerdeString(env, runtimeID)
	env = append(env, `,"signature":`...)
	env = appendSerdeString(env, sig)
	env = append(env, `,"task_id":`...)
	env = appendSerdeString(env, taskID)
	env = append(env, `,"timestamp":`...)
	env = appendSerdeString(env, ts)
	env = append(env, '}')

	enc := base64.RawURLEncoding
	out := make([]byte, len(AssertionScheme)+1+enc.EncodedLen(len(env)))
	copy(out, AssertionScheme+" ")
	enc.Encode(out[len(AssertionScheme)+1:], env)
	return string(out), nil
}

// RegistrationSignature returns the standard-base64 Ed25519 signature over
// "<runtimeID>:<timestamp>" that proves a task registration, together with
// the timestamp it signed.
func RegistrationSignature(k *PrivateKey, runtimeID string, at time.Time) (signature, timestamp string) {
	timestamp = FormatTimestamp(at)
	return base64.StdEncoding.EncodeToString(k.Sign([]byte(runtimeID + ":" + timestamp))), timestamp
}

// VerifyRegistrationSignature checks a task-registration signature.
func VerifyRegistrationSignature(pub ed25519.PublicKey, runtimeID, timestamp, signature string) error {
	sig, err := base64.StdEncoding.Strict().DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("identity: registration signature is not valid base64 Ed25519")
	}
	if !ed25519.Verify(pub, []byte(runtimeID+":"+timestamp), sig) {
		return errors.New("identity: registration signature does not verify")
	}
	return nil
}

// Assertion is a decoded AgentAssertion envelope. Signature is the
// credential: a [Secret], so an Assertion prints, logs and marshals without
// it.
type Assertion struct {
	AgentRuntimeID string `json:"agent_runtime_id"`
	Signature      Secret `json:"signature"`
	TaskID         string `json:"task_id"`
	Timestamp      string `json:"timestamp"`
}

// assertionFields is an Assertion without methods, for [Assertion.Format].
type assertionFields Assertion

// Format prints the assertion's fields under verb, the signature redacted
// by its [Secret]; see [Record.Format] for why fmt needs it.
func (a Assertion) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), assertionFields(a))
}

// maxAssertionHeader bounds the work ParseAssertion does on hostile input.
const maxAssertionHeader = 16 << 10

// ParseAssertion decodes an Authorization header value of the form
// "AgentAssertion <base64url without padding>" whose payload is a JSON
// object with exactly the four string members of the envelope. It checks
// form only; call [Assertion.Verify] to check the signature.
func ParseAssertion(header string) (Assertion, error) {
	var a Assertion
	if len(header) > maxAssertionHeader {
		return a, fmt.Errorf("%w: header too long", ErrInvalidAssertion)
	}
	token, ok := strings.CutPrefix(header, AssertionScheme+" ")
	if !ok || token == "" {
		return a, fmt.Errorf("%w: not an %s header", ErrInvalidAssertion, AssertionScheme)
	}
	env, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return a, fmt.Errorf("%w: token is not unpadded base64url", ErrInvalidAssertion)
	}
	fields, err := uniqueMembers(env)
	if err != nil {
		return a, err
	}
	want := map[string]*string{
		"agent_runtime_id": &a.AgentRuntimeID,
		"signature":        (*string)(&a.Signature),
		"task_id":          &a.TaskID,
		"timestamp":        &a.Timestamp,
	}
	if len(fields) != len(want) {
		return Assertion{}, fmt.Errorf("%w: envelope must have exactly %d members", ErrInvalidAssertion, len(want))
	}
	for name, dst := range want {
		raw, ok := fields[name]
		if !ok {
			return Assertion{}, fmt.Errorf("%w: envelope lacks %s", ErrInvalidAssertion, name)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return Assertion{}, fmt.Errorf("%w: %s is not a string", ErrInvalidAssertion, name)
		}
	}
	if a.AgentRuntimeID == "" || a.TaskID == "" {
		return Assertion{}, fmt.Errorf("%w: empty runtime or task id", ErrInvalidAssertion)
	}
	return a, nil
}

// Time returns the assertion's timestamp.
func (a Assertion) Time() (time.Time, error) { return ParseTimestamp(a.Timestamp) }

// Verify checks the signature against pub. It does not check the clock;
// compare [Assertion.Time] with the allowed skew.
func (a Assertion) Verify(pub ed25519.PublicKey) error {
	if _, err := a.Time(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidAssertion, err)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(a.Signature.Reveal())
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is not valid base64 Ed25519", ErrInvalidAssertion)
	}
	msg := a.AgentRuntimeID + ":" + a.TaskID + ":" + a.Timestamp
	if !ed25519.Verify(pub, []byte(msg), sig) {
		return fmt.Errorf("%w: signature does not verify", ErrInvalidAssertion)
	}
	return nil
}

// appendSerdeString appends s as a JSON string escaped the way serde_json
// does: only '"', '\\' and U+0000..U+001F are escaped (the short forms
// \b \f \n \r \t, otherwise \u00xx in lowercase hex); everything else,
// including <, >, &, U+2028 and U+2029, is written as literal UTF-8. s must
// be valid UTF-8.
func appendSerdeString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func truncateForError(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// uniqueMembers decodes a JSON object into its members, rejecting a repeated
// member: encoding/json would keep the last one, while serde (the Codex
// side) rejects the envelope, and two parsers must not read one header
// differently.
func uniqueMembers(env []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(env))
	notObject := fmt.Errorf("%w: envelope is not a JSON object", ErrInvalidAssertion)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	fields := make(map[string]json.RawMessage, 4)
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, notObject
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, notObject
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("%w: envelope repeats a member", ErrInvalidAssertion)
		}
		fields[name] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, notObject
	}
	return fields, nil
}
