package credentials

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/identity"
)

// ParseAuthFile parses auth.json content. It rejects input over
// [MaxAuthFileSize], input that is not one JSON object, duplicate
// top-level keys, and modelled members of the wrong JSON type; every such
// error is a *[LoadError] wrapping [ErrInvalidAuthFile] that names the
// member (for example "tokens.access_token") but never its value. It does
// not interpret auth_mode or validate credentials; [Load] does.
func ParseAuthFile(data []byte) (*AuthFile, error) {
	if len(data) > MaxAuthFileSize {
		return nil, &LoadError{Err: fmt.Errorf("%w: larger than %d bytes", ErrInvalidAuthFile, MaxAuthFileSize)}
	}
	members, err := parseObject(data, "")
	if err != nil {
		return nil, err
	}
	a := &AuthFile{}
	var legacy *field
	for _, m := range members {
		switch m.name {
		case keyAuthMode:
			a.AuthMode, _, err = decodeString(m.name, m.value)
		case keyOpenAIAPIKey:
			var s string
			var null bool
			s, null, err = decodeString(m.name, m.value)
			if err == nil && !null {
				a.OpenAIAPIKey = &s
			}
		case keyTokens:
			a.Tokens, err = parseTokens(m.value)
		case keyLastRefresh:
			a.LastRefresh, err = parseTime(m.name, m.value)
		case keyAgentIdentity:
			switch jsonKind(m.value) {
			case "an object":
				a.AgentIdentityRecord, a.AgentIdentityTaskID, a.recordExtra, err = parseRecord(keyAgentIdentity, m.value)
			default:
				a.AgentIdentity, _, err = decodeString(m.name, m.value)
				if err != nil {
					err = fieldError(keyAgentIdentity, "want a string (a JWT) or a record object, got %s", jsonKind(m.value))
				}
			}
		case keyAgentIdentityRecord:
			legacy = &m
		case keyPersonalAccessToken:
			a.PersonalAccessToken, _, err = decodeString(m.name, m.value)
		default:
			a.extra = append(a.extra, m)
		}
		if err != nil {
			return nil, err
		}
	}
	if legacy != nil {
		rec, task, extra, err := parseRecord(keyAgentIdentityRecord, legacy.value)
		if err != nil {
			return nil, err
		}
		if a.AgentIdentityRecord == nil {
			a.AgentIdentityRecord, a.AgentIdentityTaskID, a.recordExtra = rec, task, extra
		}
	}
	return a, nil
}

func parseTokens(raw json.RawMessage) (*Tokens, error) {
	if jsonKind(raw) == "null" {
		return nil, nil
	}
	members, err := parseObject(raw, keyTokens)
	if err != nil {
		return nil, err
	}
	t := &Tokens{}
	for _, m := range members {
		name := keyTokens + "." + m.name
		switch m.name {
		case "id_token":
			t.IDToken, _, err = decodeString(name, m.value)
		case "access_token":
			t.AccessToken, _, err = decodeString(name, m.value)
		case "refresh_token":
			t.RefreshToken, _, err = decodeString(name, m.value)
		case "account_id":
			t.AccountID, _, err = decodeString(name, m.value)
		default:
			t.extra = append(t.extra, m)
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

func parseTime(name string, raw json.RawMessage) (*time.Time, error) {
	s, null, err := decodeString(name, raw)
	if err != nil || null {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	// Marshal writes the time in UTC; an offset that moves it out of the
	// four-digit years would write a file this parser rejects.
	if y := t.UTC().Year(); err != nil || y < 0 || y > 9999 {
		return nil, fieldError(name, "not an RFC 3339 timestamp")
	}
	return &t, nil
}

// parseRecord decodes an agent identity record object (name is the member
// it came from, for errors): Codex's fields, the optional task_id, and the
// unknown members, kept for the next write. null yields no record.
func parseRecord(name string, raw json.RawMessage) (*identity.Record, string, []field, error) {
	switch k := jsonKind(raw); k {
	case "null":
		return nil, "", nil, nil
	case "an object":
	default:
		return nil, "", nil, fieldError(name, "want an object, got %s", k)
	}
	members, err := parseObject(raw, name)
	if err != nil {
		return nil, "", nil, err
	}
	rec := &identity.Record{}
	var task string
	var extra []field
	for _, m := range members {
		full := name + "." + m.name
		switch m.name {
		case "agent_runtime_id":
			rec.AgentRuntimeID, _, err = decodeString(full, m.value)
		case "agent_private_key":
			var key string
			key, _, err = decodeString(full, m.value)
			rec.AgentPrivateKey = identity.Secret(key)
		case "account_id":
			rec.AccountID, _, err = decodeString(full, m.value)
		case "chatgpt_user_id":
			rec.ChatGPTUserID, _, err = decodeString(full, m.value)
		case "email":
			rec.Email, _, err = decodeString(full, m.value)
		case "plan_type":
			rec.PlanType, _, err = decodeString(full, m.value)
		case "task_id":
			task, _, err = decodeString(full, m.value)
		case "chatgpt_account_is_fedramp":
			switch jsonKind(m.value) {
			case "a boolean":
				rec.IsFedRAMP = string(m.value) == "true"
			case "null":
			default:
				err = fieldError(full, "want a boolean, got %s", jsonKind(m.value))
			}
		default:
			extra = append(extra, m)
		}
		if err != nil {
			return nil, "", nil, err
		}
	}
	return rec, task, extra, nil
}

// parseObject splits one JSON object into its members, in order. where
// names the object in errors ("" for the top level). Syntax errors report
// only a byte offset: the decoder's own message quotes a character of the
// input, which could be part of a secret.
func parseObject(data []byte, where string) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(where, dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if where == "" {
			return nil, fieldError("", "want a JSON object, got %s", jsonKind(bytes.TrimSpace(data)))
		}
		return nil, fieldError(where, "want an object, got %s", jsonKind(bytes.TrimSpace(data)))
	}
	var out []field
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(where, dec, err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(where, dec, err)
		}
		full := name
		if where != "" {
			full = where + "." + name
		}
		if seen[name] {
			return nil, fieldError(memberName(full), "duplicate member")
		}
		seen[name] = true
		out = append(out, field{name: name, value: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError(where, dec, err)
	}
	if where == "" {
		if _, err := dec.Token(); err != io.EOF {
			return nil, fieldError("", "not valid JSON: data after the top-level object")
		}
	}
	return out, nil
}

// memberName bounds a member name taken from the input for an error
// message: a made-up name can be arbitrarily long and hold control
// characters. It keeps at most 64 characters and replaces controls.
func memberName(s string) string {
	const max = 64
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "..."
}

// errEndOfInput marks a document that stops early: an empty file, or the
// first part of one, which is what a reader sees while a writer rewrites
// the file in place (the Codex CLI truncates auth.json and writes it
// anew).
var errEndOfInput = errors.New("unexpected end of input")

func syntaxError(where string, dec *json.Decoder, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &LoadError{Field: where, Err: fmt.Errorf("%w: not valid JSON: %w", ErrInvalidAuthFile, errEndOfInput)}
	}
	return fieldError(where, "not valid JSON at byte offset %d", dec.InputOffset())
}

// decodeString decodes a member that must be a JSON string or null.
func decodeString(name string, raw json.RawMessage) (s string, null bool, err error) {
	switch k := jsonKind(raw); k {
	case "null":
		return "", true, nil
	case "a string":
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fieldError(name, "not a valid JSON string")
		}
		return s, false, nil
	default:
		return "", false, fieldError(name, "want a string, got %s", k)
	}
}

// jsonKind names the JSON type of a value from its first byte, for error
// messages that must not quote the value.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func fieldError(name, format string, args ...any) error {
	return &LoadError{Field: name, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidAuthFile}, args...)...)}
}
