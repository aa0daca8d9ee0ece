package credentials

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// MarshalJSON encodes the redacted summary of [AuthFile.LogValue], not the
// file: json.Marshal (and log/slog's JSON handler, which uses it for values
// inside maps and slices) must never print a secret. Use [AuthFile.Marshal]
// to produce auth.json content.
func (a AuthFile) MarshalJSON() ([]byte, error) { return logValueJSON(a.LogValue()) }

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
