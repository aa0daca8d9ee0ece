package credentials

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

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
