package credentials

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/identity"
)

// MaxAuthFileSize is the largest auth.json that [ParseAuthFile], [Load],
// [FileStore] and the file token source accept: 1 MiB. A real auth.json is
// a few kilobytes; the cap keeps a corrupt or hostile file from being read
// into memory whole.
const MaxAuthFileSize = 1 << 20

// The auth.json auth_mode values.
const (
	AuthModeAPIKey            = "apikey"
	AuthModeChatGPT           = "chatgpt"
	AuthModeChatGPTAuthTokens = "chatgptAuthTokens"
	AuthModeAgentIdentity     = "agentIdentity"
	// AuthModePersonalAccessToken is Codex's mode for a personal access
	// token; Codex usually leaves auth_mode out and infers it.
	AuthModePersonalAccessToken = "personalAccessToken"
)

// Top-level auth.json keys that AuthFile models; every other key is kept
// verbatim.
const (
	keyAuthMode            = "auth_mode"
	keyOpenAIAPIKey        = "OPENAI_API_KEY"
	keyTokens              = "tokens"
	keyLastRefresh         = "last_refresh"
	keyAgentIdentity       = "agent_identity"
	keyPersonalAccessToken = "personal_access_token"
	// keyAgentIdentityRecord is where agentauth versions before the record
	// form of agent_identity stored a provisioned identity. It is still
	// read, and dropped on the next write (migrated into agent_identity).
	keyAgentIdentityRecord = "agent_identity_record"
)

// field is one JSON object member whose value AuthFile does not model. The
// value keeps the exact bytes of every token (strings keep their escapes,
// numbers their precision); only whitespace between tokens is re-indented
// on write.
type field struct {
	name  string
	value json.RawMessage
}

// Tokens is the "tokens" object of a ChatGPT login. IDToken, AccessToken
// and RefreshToken are secrets and are redacted in fmt, log/slog and
// encoding/json output.
// Members other than the four below are preserved on write, in order.
type Tokens struct {
	IDToken      string // "id_token": a JWT whose claims carry the account id and FedRAMP bit
	AccessToken  string // "access_token": the Bearer token
	RefreshToken string // "refresh_token"
	AccountID    string // "account_id": string or null (written as null when empty, as Codex does)

	extra []field
}

// AuthFile is the content of $CODEX_HOME/auth.json. Parse it with
// [ParseAuthFile] and write it with [AuthFile.Marshal]; top-level members
// it does not model (and unknown members inside "tokens" and inside a
// record "agent_identity") survive the round trip in their original order,
// after the modelled ones. The zero value is an empty file. Secrets are
// redacted in fmt, log/slog and encoding/json output (json.Marshal gives a
// summary; the file format comes only from Marshal).
//
// "agent_identity" holds either an Agent Identity JWT (AgentIdentity) or,
// as current Codex writes after provisioning an identity from a ChatGPT
// login, a record object (AgentIdentityRecord and AgentIdentityTaskID).
// Files written by earlier agentauth versions kept a provisioned record
// under "agent_identity_record"; it is read into AgentIdentityRecord when
// "agent_identity" holds no record, and Marshal writes it in Codex's place,
// so the CLI and the library share one runtime.
type AuthFile struct {
	// AuthMode is "auth_mode": "", "apikey", "chatgpt",
	// "chatgptAuthTokens" or "agentIdentity". Omitted on write when empty.
	AuthMode string
	// OpenAIAPIKey is "OPENAI_API_KEY": a string, or nil for null/absent.
	// Always written (as null when nil), as Codex does.
	OpenAIAPIKey *string
	// Tokens is "tokens", nil when absent or null.
	Tokens *Tokens
	// LastRefresh is "last_refresh" (RFC 3339), nil when absent or null.
	LastRefresh *time.Time
	// AgentIdentity is "agent_identity" when it is a string: an Agent
	// Identity JWT.
	AgentIdentity string
	// AgentIdentityRecord is "agent_identity" when it is a record object
	// (or the legacy "agent_identity_record", see the type doc).
	AgentIdentityRecord *identity.Record
	// AgentIdentityTaskID is the record's optional "task_id": the process
	// task Codex registered for it. Written only with a record.
	AgentIdentityTaskID string
	// PersonalAccessToken is "personal_access_token" (a value starting
	// "at-"), sent as a Bearer token.
	PersonalAccessToken string

	recordExtra []field // unknown members of the record object
	extra       []field
}

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

// Marshal encodes the file as Codex writes it: a JSON object indented by
// two spaces, with a trailing newline. Modelled members come first, in
// Codex's order (auth_mode, OPENAI_API_KEY, tokens, last_refresh,
// agent_identity, personal_access_token), followed by the preserved
// unknown members in their original order. agent_identity is the JWT when
// there is one, else the record in Codex's record form (email written as
// "" when empty, task_id only when set); a record beside a JWT is kept
// under the legacy agent_identity_record rather than lost. HTML characters are not
// escaped, so values round-trip unchanged.
func (a *AuthFile) Marshal() ([]byte, error) {
	compact, err := a.marshalCompact()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("credentials: encoding auth.json: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func (a *AuthFile) marshalCompact() ([]byte, error) {
	var b objectWriter
	if a.AuthMode != "" {
		b.member(keyAuthMode, a.AuthMode)
	}
	if a.OpenAIAPIKey != nil {
		b.member(keyOpenAIAPIKey, *a.OpenAIAPIKey)
	} else {
		b.raw(keyOpenAIAPIKey, []byte("null"))
	}
	if a.Tokens != nil {
		var t objectWriter
		t.member("id_token", a.Tokens.IDToken)
		t.member("access_token", a.Tokens.AccessToken)
		t.member("refresh_token", a.Tokens.RefreshToken)
		if a.Tokens.AccountID != "" {
			t.member("account_id", a.Tokens.AccountID)
		} else {
			t.raw("account_id", []byte("null"))
		}
		for _, f := range a.Tokens.extra {
			t.raw(f.name, f.value)
		}
		b.raw(keyTokens, t.bytes())
	}
	if a.LastRefresh != nil {
		b.member(keyLastRefresh, a.LastRefresh.UTC().Format(time.RFC3339Nano))
	}
	switch {
	case a.AgentIdentity != "":
		b.member(keyAgentIdentity, a.AgentIdentity)
		if a.AgentIdentityRecord != nil {
			b.raw(keyAgentIdentityRecord, a.recordBytes(&b))
		}
	case a.AgentIdentityRecord != nil:
		b.raw(keyAgentIdentity, a.recordBytes(&b))
	}
	if a.PersonalAccessToken != "" {
		b.member(keyPersonalAccessToken, a.PersonalAccessToken)
	}
	for _, f := range a.extra {
		b.raw(f.name, f.value)
	}
	if b.err != nil {
		return nil, fmt.Errorf("credentials: encoding auth.json: %w", b.err)
	}
	return b.bytes(), nil
}

// recordBytes encodes the record object member by member (identity.Record
// redacts its key in json.Marshal; the file keeps the members in order and
// must hold the real key).
// Encoding errors are recorded in parent.
func (a *AuthFile) recordBytes(parent *objectWriter) []byte {
	r := a.AgentIdentityRecord
	var w objectWriter
	w.member("agent_runtime_id", r.AgentRuntimeID)
	w.member("agent_private_key", r.AgentPrivateKey.Reveal())
	w.member("account_id", r.AccountID)
	w.member("chatgpt_user_id", r.ChatGPTUserID)
	w.member("email", r.Email)
	w.member("plan_type", r.PlanType)
	w.member("chatgpt_account_is_fedramp", r.IsFedRAMP)
	if a.AgentIdentityTaskID != "" {
		w.member("task_id", a.AgentIdentityTaskID)
	}
	for _, f := range a.recordExtra {
		w.raw(f.name, f.value)
	}
	if w.err != nil && parent.err == nil {
		parent.err = w.err
	}
	return w.bytes()
}

// objectWriter builds a compact JSON object member by member, keeping the
// order it is given (encoding/json would sort map keys).
type objectWriter struct {
	buf bytes.Buffer
	n   int
	err error
}

func (w *objectWriter) member(name string, v any) {
	enc, err := encodeJSON(v)
	if err != nil {
		w.err = err
		return
	}
	w.raw(name, enc)
}

func (w *objectWriter) raw(name string, v []byte) {
	if w.n == 0 {
		w.buf.WriteByte('{')
	} else {
		w.buf.WriteByte(',')
	}
	w.n++
	k, _ := encodeJSON(name) // a string always encodes
	w.buf.Write(k)
	w.buf.WriteByte(':')
	w.buf.Write(v)
}

func (w *objectWriter) bytes() []byte {
	if w.n == 0 {
		return []byte("{}")
	}
	return append(w.buf.Bytes(), '}')
}

// encodeJSON is json.Marshal without HTML escaping, so "<", ">" and "&" in
// a value are written as themselves, as Codex (serde_json) writes them.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalJSON encodes the redacted summary of [AuthFile.LogValue], not the
// file: json.Marshal (and log/slog's JSON handler, which uses it for values
// inside maps and slices) must never print a secret. Use [AuthFile.Marshal]
// to produce auth.json content.
func (a AuthFile) MarshalJSON() ([]byte, error) { return logValueJSON(a.LogValue()) }

// isModelledKey reports whether name is a top-level member AuthFile models.
func isModelledKey(name string) bool {
	switch name {
	case keyAuthMode, keyOpenAIAPIKey, keyTokens, keyLastRefresh, keyAgentIdentity, keyAgentIdentityRecord, keyPersonalAccessToken:
		return true
	}
	return false
}

// Extra returns a copy of the raw JSON value of a top-level member that
// AuthFile does not model, and whether it is present.
func (a *AuthFile) Extra(name string) (json.RawMessage, bool) {
	for _, f := range a.extra {
		if f.name == name {
			return append(json.RawMessage(nil), f.value...), true
		}
	}
	return nil, false
}

// SetExtra sets a top-level member that AuthFile does not model to the raw
// JSON value (a nil value removes it). An existing member keeps its
// position; a new one is appended. It rejects modelled names (use the
// struct fields) and values that are not valid JSON.
func (a *AuthFile) SetExtra(name string, value json.RawMessage) error {
	if isModelledKey(name) {
		return fmt.Errorf("credentials: SetExtra: %q is a modelled auth.json member", name)
	}
	if value == nil {
		for i, f := range a.extra {
			if f.name == name {
				a.extra = append(a.extra[:i:i], a.extra[i+1:]...)
				return nil
			}
		}
		return nil
	}
	if !json.Valid(value) {
		return fmt.Errorf("credentials: SetExtra: value of %q is not valid JSON", name)
	}
	var c bytes.Buffer
	_ = json.Compact(&c, value) // valid JSON always compacts; keeps token bytes
	v := json.RawMessage(c.Bytes())
	for i, f := range a.extra {
		if f.name == name {
			a.extra[i].value = v
			return nil
		}
	}
	a.extra = append(a.extra, field{name: name, value: v})
	return nil
}

// String describes the tokens with every token redacted.
func (t Tokens) String() string {
	return "credentials.Tokens{AccountID:" + strconv.Quote(t.AccountID) +
		" IDToken:" + redact(t.IDToken) +
		" AccessToken:" + redact(t.AccessToken) +
		" RefreshToken:" + redact(t.RefreshToken) + "}"
}

// MarshalJSON encodes the redacted summary of [Tokens.LogValue].
func (t Tokens) MarshalJSON() ([]byte, error) { return logValueJSON(t.LogValue()) }

// GoString is [Tokens.String], so %#v redacts too.
func (t Tokens) GoString() string { return t.String() }

// Format makes every fmt verb print [Tokens.String].
func (t Tokens) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue logs the account id and which tokens are present.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("account_id", t.AccountID),
		slog.Bool("has_id_token", t.IDToken != ""),
		slog.Bool("has_access_token", t.AccessToken != ""),
		slog.Bool("has_refresh_token", t.RefreshToken != ""),
	)
}

// String describes the file with every secret redacted; unknown members
// are listed by name only.
func (a AuthFile) String() string {
	var b strings.Builder
	b.WriteString("credentials.AuthFile{AuthMode:" + strconv.Quote(a.AuthMode))
	if a.OpenAIAPIKey != nil {
		b.WriteString(" OpenAIAPIKey:" + redact(*a.OpenAIAPIKey))
	}
	if a.Tokens != nil {
		b.WriteString(" Tokens:" + a.Tokens.String())
	}
	if a.LastRefresh != nil {
		b.WriteString(" LastRefresh:" + a.LastRefresh.UTC().Format(time.RFC3339))
	}
	if a.AgentIdentity != "" {
		b.WriteString(" AgentIdentity:" + redactedMark)
	}
	if a.AgentIdentityRecord != nil {
		b.WriteString(" AgentIdentityRecord:" + fmt.Sprintf("%+v", *a.AgentIdentityRecord))
	}
	if a.PersonalAccessToken != "" {
		b.WriteString(" PersonalAccessToken:" + redactedMark)
	}
	if len(a.extra) > 0 {
		names := make([]string, len(a.extra))
		for i, f := range a.extra {
			names[i] = strconv.Quote(f.name)
		}
		b.WriteString(" Extra:[" + strings.Join(names, " ") + "]")
	}
	b.WriteString("}")
	return b.String()
}

// GoString is [AuthFile.String], so %#v redacts too.
func (a AuthFile) GoString() string { return a.String() }

// Format makes every fmt verb print [AuthFile.String].
func (a AuthFile) Format(f fmt.State, _ rune) { io.WriteString(f, a.String()) }

// LogValue logs the file's shape, never a secret.
func (a AuthFile) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("auth_mode", a.AuthMode),
		slog.Bool("has_api_key", a.OpenAIAPIKey != nil && *a.OpenAIAPIKey != ""),
		slog.Bool("has_tokens", a.Tokens != nil),
		slog.Bool("has_agent_identity", a.AgentIdentity != ""),
		slog.Bool("has_agent_identity_record", a.AgentIdentityRecord != nil),
		slog.Bool("has_personal_access_token", a.PersonalAccessToken != ""),
		slog.Int("extra_members", len(a.extra)),
	}
	if a.Tokens != nil {
		attrs = append(attrs, slog.String("account_id", a.Tokens.AccountID))
	}
	return slog.GroupValue(attrs...)
}
