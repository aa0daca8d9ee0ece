package credentials

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// redactedMark replaces every secret in display output.
const redactedMark = "[REDACTED]"

// redact shows whether a secret is set without showing it: "" stays "" so
// that a missing token is still visible when debugging.
func redact(s string) string {
	if s == "" {
		return `""`
	}
	return redactedMark
}

// ChatGPTLogin is a ChatGPT login as auth.json stores it. AccessToken is
// sent as a Bearer token (and authorises agent registration); AccountID and
// FedRAMP become the routing headers. AccessToken, RefreshToken and IDToken
// are secrets and are redacted in fmt, log/slog and encoding/json output.
type ChatGPTLogin struct {
	AccessToken  string
	RefreshToken string
	IDToken      string

	// AccountID is tokens.account_id, or the id-token claim
	// https://api.openai.com/auth → chatgpt_account_id when that is empty.
	AccountID string
	// UserID is the ChatGPT user: claim https://api.openai.com/auth →
	// chatgpt_user_id of the id token, else of the access token; "" when
	// neither says.
	UserID string
	// FedRAMP is the id-token claim chatgpt_account_is_fedramp.
	FedRAMP bool
	// ExternallyManaged is set for auth_mode "chatgptAuthTokens": an outside
	// host owns and refreshes the tokens, so agentauth never provisions an
	// Agent Identity from them.
	ExternallyManaged bool
	// LastRefresh is auth.json last_refresh; zero when absent.
	LastRefresh time.Time
}

// Routing returns the routing headers of the login's account.
func (l ChatGPTLogin) Routing() headers.Routing {
	return headers.Routing{AccountID: l.AccountID, FedRAMP: l.FedRAMP}
}

// String describes the login with its tokens redacted.
func (l ChatGPTLogin) String() string {
	var b strings.Builder
	b.WriteString("credentials.ChatGPTLogin{AccountID:")
	b.WriteString(strconv.Quote(l.AccountID))
	b.WriteString(" FedRAMP:" + strconv.FormatBool(l.FedRAMP))
	b.WriteString(" ExternallyManaged:" + strconv.FormatBool(l.ExternallyManaged))
	if !l.LastRefresh.IsZero() {
		b.WriteString(" LastRefresh:" + l.LastRefresh.UTC().Format(time.RFC3339))
	}
	b.WriteString(" AccessToken:" + redact(l.AccessToken))
	b.WriteString(" RefreshToken:" + redact(l.RefreshToken))
	b.WriteString(" IDToken:" + redact(l.IDToken))
	b.WriteString("}")
	return b.String()
}

// MarshalJSON encodes the redacted summary of [ChatGPTLogin.LogValue], so
// json.Marshal and log/slog's JSON handler never print a token.
func (l ChatGPTLogin) MarshalJSON() ([]byte, error) { return logValueJSON(l.LogValue()) }

// GoString is [ChatGPTLogin.String], so %#v redacts too.
func (l ChatGPTLogin) GoString() string { return l.String() }

// Format makes every fmt verb print [ChatGPTLogin.String].
func (l ChatGPTLogin) Format(f fmt.State, _ rune) { io.WriteString(f, l.String()) }

// LogValue logs the login's routing and metadata, never its tokens.
func (l ChatGPTLogin) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("account_id", l.AccountID),
		slog.Bool("fedramp", l.FedRAMP),
		slog.Bool("externally_managed", l.ExternallyManaged),
		slog.Bool("has_refresh_token", l.RefreshToken != ""),
	}
	if !l.LastRefresh.IsZero() {
		attrs = append(attrs, slog.Time("last_refresh", l.LastRefresh))
	}
	return slog.GroupValue(attrs...)
}

// Credentials is one resolved credential. Exactly the fields of its Kind
// are set: APIKey for [KindAPIKey], ChatGPT for [KindChatGPT], AgentIdentity
// (and AgentIdentityJWT when it came from a JWT) for [KindAgentIdentity].
// APIKey, the ChatGPT tokens, the record's private key and AgentIdentityJWT
// are secrets and are redacted in fmt, log/slog and encoding/json output.
type Credentials struct {
	Kind Kind
	// APIKey is the key sent as "Bearer <APIKey>": an API key, or a
	// personal access token when PersonalAccessToken is set.
	APIKey string
	// PersonalAccessToken says that APIKey is a ChatGPT personal access
	// token ("at-..." from env CODEX_ACCESS_TOKEN or auth.json
	// personal_access_token). Codex sends it as a Bearer token with the
	// routing headers of its account, so it is hydrated first: the result
	// of [PersonalAccessTokenLogin] has Kind [KindChatGPT], the token in
	// ChatGPT.AccessToken, and this flag still set.
	PersonalAccessToken bool
	// ChatGPT is the ChatGPT login.
	ChatGPT *ChatGPTLogin
	// AgentIdentity is the Agent Identity record, already parsed and
	// validated (it names a runtime and holds a usable key).
	AgentIdentity *identity.Record
	// AgentIdentityJWT is the JWT the record was decoded from, when it came
	// from one (auth.json agent_identity or env CODEX_AGENT_IDENTITY).
	AgentIdentityJWT string
	// Source says where the credential came from, for diagnostics: for
	// example "env CODEX_API_KEY", "env OPENAI_API_KEY" or the path of
	// auth.json. It never holds a credential value.
	Source string
}

// Routing returns the account routing of the credential: the login's
// account id and FedRAMP bit for [KindChatGPT], the record's account_id
// and chatgpt_account_is_fedramp for [KindAgentIdentity], and the zero
// value (no routing headers) otherwise.
func (c Credentials) Routing() headers.Routing {
	switch c.Kind {
	case KindChatGPT:
		if c.ChatGPT != nil {
			return c.ChatGPT.Routing()
		}
	case KindAgentIdentity:
		if c.AgentIdentity != nil {
			return headers.Routing{AccountID: c.AgentIdentity.AccountID, FedRAMP: c.AgentIdentity.IsFedRAMP}
		}
	}
	return headers.Routing{}
}

// String describes the credential with every secret redacted.
func (c Credentials) String() string {
	var b strings.Builder
	b.WriteString("credentials.Credentials{Kind:" + c.Kind.String())
	b.WriteString(" Source:" + strconv.Quote(c.Source))
	if c.APIKey != "" {
		if c.PersonalAccessToken {
			b.WriteString(" PersonalAccessToken:" + redactedMark)
		} else {
			b.WriteString(" APIKey:" + redactedMark)
		}
	}
	if c.ChatGPT != nil {
		b.WriteString(" ChatGPT:" + c.ChatGPT.String())
	}
	if c.AgentIdentity != nil {
		b.WriteString(" AgentIdentity:" + fmt.Sprintf("%+v", *c.AgentIdentity))
	}
	if c.AgentIdentityJWT != "" {
		b.WriteString(" AgentIdentityJWT:" + redactedMark)
	}
	b.WriteString("}")
	return b.String()
}

// MarshalJSON encodes the redacted summary of [Credentials.LogValue], so
// json.Marshal and log/slog's JSON handler never print a secret.
func (c Credentials) MarshalJSON() ([]byte, error) { return logValueJSON(c.LogValue()) }

// GoString is [Credentials.String], so %#v redacts too.
func (c Credentials) GoString() string { return c.String() }

// Format makes every fmt verb print [Credentials.String].
func (c Credentials) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// LogValue logs the kind, source and routing, never a secret.
func (c Credentials) LogValue() slog.Value {
	r := c.Routing()
	attrs := []slog.Attr{
		slog.String("kind", c.Kind.String()),
		slog.String("source", c.Source),
		slog.String("account_id", r.AccountID),
		slog.Bool("fedramp", r.FedRAMP),
	}
	if c.PersonalAccessToken {
		attrs = append(attrs, slog.Bool("personal_access_token", true))
	}
	if c.AgentIdentity != nil {
		attrs = append(attrs, slog.String("agent_runtime_id", c.AgentIdentity.AgentRuntimeID))
	}
	return slog.GroupValue(attrs...)
}

// logValueJSON renders a redacted slog value as JSON. slog's JSON handler
// calls json.Marshal, not LogValue, for values nested in maps and slices,
// so the secret-holding types implement MarshalJSON with this.
func logValueJSON(v slog.Value) ([]byte, error) { return json.Marshal(logValueAny(v)) }

func logValueAny(v slog.Value) any {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		m := make(map[string]any, len(v.Group()))
		for _, a := range v.Group() {
			m[a.Key] = logValueAny(a.Value)
		}
		return m
	case slog.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	case slog.KindDuration:
		return v.Duration().String()
	}
	return v.Any()
}
