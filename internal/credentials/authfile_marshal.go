package credentials

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

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
