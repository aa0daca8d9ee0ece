package credentials

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// Environment variables [Load] reads.
const (
	EnvCodexAPIKey        = "CODEX_API_KEY"        // an API key; wins over everything
	EnvCodexAccessToken   = "CODEX_ACCESS_TOKEN"   // "at-..." a personal access token, else an Agent Identity JWT
	EnvCodexAgentIdentity = "CODEX_AGENT_IDENTITY" // deprecated (Codex no longer reads it): an Agent Identity JWT
	EnvOpenAIAPIKey       = "OPENAI_API_KEY"       // an API key, used only when auth.json holds no credential
	EnvCodexHome          = "CODEX_HOME"           // the directory holding auth.json (default ~/.codex)
)

// AuthFileName is the name of the credential file inside $CODEX_HOME.
const AuthFileName = "auth.json"

// Sources reported in [Credentials.Source] for environment credentials.
// A credential from auth.json reports the file's path.
const (
	SourceEnvCodexAPIKey        = "env " + EnvCodexAPIKey
	SourceEnvCodexAccessToken   = "env " + EnvCodexAccessToken
	SourceEnvCodexAgentIdentity = "env " + EnvCodexAgentIdentity
	SourceEnvOpenAIAPIKey       = "env " + EnvOpenAIAPIKey
)

// Sentinel errors, wrapped by the *[LoadError] that [Load], [ParseAuthFile]
// and [FileStore] return; test them with errors.Is.
var (
	// ErrInvalidAuthFile: auth.json is malformed, too large, not a regular
	// file, has a member of the wrong type, or lacks what its auth_mode needs.
	ErrInvalidAuthFile = errors.New("invalid auth.json")
	// ErrUnknownAuthMode: auth_mode holds a value agentauth does not know
	// (also wraps ErrInvalidAuthFile).
	ErrUnknownAuthMode = errors.New("unknown auth_mode")
	// ErrNoJWTDecoder: an Agent Identity JWT was found but
	// LoadOptions.DecodeAgentIdentityJWT is nil.
	ErrNoJWTDecoder = errors.New("an agent identity JWT needs LoadOptions.DecodeAgentIdentityJWT")
)

// LoadError is the error type of [Load], [ParseAuthFile] and [FileStore]. It
// names where the problem is, never a credential value.
type LoadError struct {
	// Path is the auth.json path, or "" for an environment variable or
	// for [ParseAuthFile], which has no path.
	Path string
	// Field is the offending member ("tokens.access_token",
	// "auth_mode", ...) or environment variable ("env CODEX_API_KEY"), or
	// "" when the problem concerns the whole file.
	Field string
	// Err is the cause; it wraps a sentinel of this package, a
	// headers.ErrInvalidValue, an identity error, or an fs error.
	Err error

	temporary bool
}

// Temporary reports whether the same read may succeed soon: the file could
// not be parsed while another process was rewriting it.
func (e *LoadError) Temporary() bool { return e.temporary }

// Error implements error.
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("credentials: ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("load failed")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *LoadError) Unwrap() error { return e.Err }

// withPath sets the path of a *LoadError that does not have one yet.
func withPath(err error, path string) error {
	var le *LoadError
	if errors.As(err, &le) && le.Path == "" {
		le.Path = path
		return err
	}
	if err != nil && le == nil {
		return &LoadError{Path: path, Err: err}
	}
	return err
}

// LoadOptions configures [Load]. The zero value reads the real environment
// and $CODEX_HOME/auth.json and refuses Agent Identity JWTs.
type LoadOptions struct {
	// CodexHome is the directory holding auth.json. Default: $CODEX_HOME
	// (read through Getenv), else ~/.codex.
	CodexHome string
	// Getenv reads environment variables. Default: os.Getenv.
	Getenv func(string) string
	// DecodeAgentIdentityJWT turns an Agent Identity JWT (env
	// CODEX_AGENT_IDENTITY or auth.json agent_identity) into a record.
	// The caller chooses verified decoding (against a JWKS) or an explicit
	// unverified decode. Default: nil, and a JWT is then an error
	// wrapping [ErrNoJWTDecoder]. The returned record is validated by Load.
	DecodeAgentIdentityJWT func(token string) (*identity.Record, error)
}

// DefaultCodexHome returns $CODEX_HOME (read through getenv, nil meaning
// os.Getenv; surrounding space trimmed) or, when that is empty, ~/.codex.
func DefaultCodexHome(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if h := strings.TrimSpace(getenv(EnvCodexHome)); h != "" {
		return h, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("credentials: cannot find the home directory for ~/.codex: %w", err)
	}
	return filepath.Join(home, ".codex"), nil
}

// Load resolves the credential to use, as the Codex CLI does. The first
// rule that yields a credential wins:
//
//  1. env CODEX_API_KEY → [KindAPIKey];
//  2. env CODEX_ACCESS_TOKEN, as current Codex reads it: a value starting
//     "at-" is a personal access token ([KindAPIKey] with
//     Credentials.PersonalAccessToken set; before it is sent, its account
//     is asked of the AuthAPI with [HydratePersonalAccessToken], which
//     transport.Detect does), any other value
//     an Agent Identity JWT (decoded by opts.DecodeAgentIdentityJWT) →
//     [KindAgentIdentity];
//  3. env CODEX_AGENT_IDENTITY (a JWT) → [KindAgentIdentity], with a
//     one-time warning: the Codex CLI no longer reads it, and
//     CODEX_ACCESS_TOKEN takes the JWT;
//  4. $CODEX_HOME/auth.json, when it exists. A present auth_mode decides:
//     "apikey" → OPENAI_API_KEY; "chatgpt" → tokens; "chatgptAuthTokens" →
//     tokens with ChatGPTLogin.ExternallyManaged set; "agentIdentity" →
//     agent_identity (a JWT or a record object); "personalAccessToken" →
//     personal_access_token; the member the mode needs must be present.
//     "bedrockApiKey", "bedrockAccessKeys" and "headers" are Codex logins
//     that cannot call the ChatGPT backend: an error wrapping
//     [ErrNotChatGPTLogin]. Any other mode is an error wrapping
//     [ErrUnknownAuthMode]. Without auth_mode the mode is resolved in
//     Codex's order: personal_access_token (Codex writes it without
//     auth_mode), else a bedrock_api_key (ErrNotChatGPTLogin), else a
//     non-empty OPENAI_API_KEY (so a file of an older Codex login holding
//     both tokens and an exchanged key is an API key login, as Codex
//     reads it), else tokens (ChatGPT), else, beyond Codex, an
//     agent_identity JWT. A record agent_identity on its own is not a
//     credential without auth_mode "agentIdentity": it belongs to the
//     ChatGPT login it was provisioned from;
//  5. env OPENAI_API_KEY → [KindAPIKey];
//  6. otherwise [KindNone] with a nil error, or, when config.toml keeps
//     Codex's credentials in the OS keyring (cli_auth_credentials_store
//     "keyring" or "auto") and there is no auth.json, an error wrapping
//     [ErrKeyringStorage] that says how to switch Codex to file storage.
//
// Environment values are trimmed of surrounding space and count only when
// non-empty. A missing auth.json (or a dangling symlink) is not an error;
// a symlinked auth.json is followed, but a target that is not a regular
// file, an unreadable file, a file over [MaxAuthFileSize] and a malformed
// file are errors, never [KindNone], as is a home directory that cannot be
// found when CodexHome and $CODEX_HOME are both empty.
//
// The ChatGPT account id is tokens.account_id, falling back to the
// id-token claim https://api.openai.com/auth → chatgpt_account_id; the
// FedRAMP bit is that claim's chatgpt_account_is_fedramp. The id token is
// decoded without verification (it is the user's own file). Access tokens,
// API keys and account ids are checked with headers.ValidateValue here, so
// a value that could not be sent fails at load time. Errors are
// *[LoadError] and never contain a credential.
func Load(opts LoadOptions) (*Credentials, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if key := strings.TrimSpace(getenv(EnvCodexAPIKey)); key != "" {
		if err := headers.ValidateValue(headers.Authorization, key); err != nil {
			return nil, &LoadError{Field: SourceEnvCodexAPIKey, Err: err}
		}
		return &Credentials{Kind: KindAPIKey, APIKey: key, Source: SourceEnvCodexAPIKey}, nil
	}
	if tok := strings.TrimSpace(getenv(EnvCodexAccessToken)); tok != "" {
		if IsPersonalAccessToken(tok) {
			if err := headers.ValidateValue(headers.Authorization, tok); err != nil {
				return nil, &LoadError{Field: SourceEnvCodexAccessToken, Err: err}
			}
			return &Credentials{Kind: KindAPIKey, APIKey: tok, PersonalAccessToken: true, Source: SourceEnvCodexAccessToken}, nil
		}
		rec, err := decodeAgentIdentityJWT(opts.DecodeAgentIdentityJWT, tok)
		if err != nil {
			return nil, &LoadError{Field: SourceEnvCodexAccessToken, Err: err}
		}
		return &Credentials{Kind: KindAgentIdentity, AgentIdentity: rec, AgentIdentityJWT: tok, Source: SourceEnvCodexAccessToken}, nil
	}
	if jwt := strings.TrimSpace(getenv(EnvCodexAgentIdentity)); jwt != "" {
		warnAgentIdentityEnv()
		rec, err := decodeAgentIdentityJWT(opts.DecodeAgentIdentityJWT, jwt)
		if err != nil {
			return nil, &LoadError{Field: SourceEnvCodexAgentIdentity, Err: err}
		}
		return &Credentials{Kind: KindAgentIdentity, AgentIdentity: rec, AgentIdentityJWT: jwt, Source: SourceEnvCodexAgentIdentity}, nil
	}

	home := opts.CodexHome
	if home == "" {
		var err error
		if home, err = DefaultCodexHome(getenv); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(home, AuthFileName)
	af, _, err := readAuthFileRetrying(path)
	missing := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		missing = true
	case err != nil:
		return nil, err
	default:
		c, err := credentialsFromAuthFile(af, opts.DecodeAgentIdentityJWT)
		if err != nil {
			return nil, withPath(err, path)
		}
		if c != nil {
			c.Source = path
			return c, nil
		}
	}

	if key := strings.TrimSpace(getenv(EnvOpenAIAPIKey)); key != "" {
		if err := headers.ValidateValue(headers.Authorization, key); err != nil {
			return nil, &LoadError{Field: SourceEnvOpenAIAPIKey, Err: err}
		}
		return &Credentials{Kind: KindAPIKey, APIKey: key, Source: SourceEnvOpenAIAPIKey}, nil
	}
	if missing {
		if err := keyringStorageError(home); err != nil {
			return nil, err
		}
	}
	return &Credentials{Kind: KindNone}, nil
}

// PersonalAccessTokenPrefix starts every personal access token; Codex tells
// one from an Agent Identity JWT in CODEX_ACCESS_TOKEN by it.
const PersonalAccessTokenPrefix = "at-"

// IsPersonalAccessToken reports whether tok is a personal access token
// rather than an Agent Identity JWT.
func IsPersonalAccessToken(tok string) bool { return strings.HasPrefix(tok, PersonalAccessTokenPrefix) }

// credentialsFromAuthFile applies rule 3 of [Load]. It returns nil, nil
// when the file holds no credential. Errors are *LoadError without a path.
func credentialsFromAuthFile(af *AuthFile, decode func(string) (*identity.Record, error)) (*Credentials, error) {
	switch af.AuthMode {
	case "":
		// Codex's order (AuthDotJson::resolved_mode); an agent_identity
		// JWT is the last resort Codex does not have.
		switch {
		case af.PersonalAccessToken != "":
			return patFromAuthFile(af)
		case hasBedrockKey(af):
			return nil, notChatGPTLogin(AuthModeBedrockAPIKey)
		case af.OpenAIAPIKey != nil && *af.OpenAIAPIKey != "":
			return apiKeyFromAuthFile(af)
		case af.Tokens != nil:
			return chatGPTFromAuthFile(af, false)
		case af.AgentIdentity != "":
			return agentIdentityFromJWT(af.AgentIdentity, decode)
		}
		return nil, nil
	case AuthModeBedrockAPIKey, AuthModeBedrockAccessKeys, AuthModeHeaders:
		return nil, notChatGPTLogin(af.AuthMode)
	case AuthModeAPIKey:
		if af.OpenAIAPIKey == nil || *af.OpenAIAPIKey == "" {
			return nil, fieldError(keyOpenAIAPIKey, "auth_mode %q needs a non-empty value", AuthModeAPIKey)
		}
		return apiKeyFromAuthFile(af)
	case AuthModeChatGPT, AuthModeChatGPTAuthTokens:
		if af.Tokens == nil {
			return nil, fieldError(keyTokens, "auth_mode %q needs this member", af.AuthMode)
		}
		return chatGPTFromAuthFile(af, af.AuthMode == AuthModeChatGPTAuthTokens)
	case AuthModeAgentIdentity:
		switch {
		case af.AgentIdentity != "":
			return agentIdentityFromJWT(af.AgentIdentity, decode)
		case af.AgentIdentityRecord != nil:
			rec := *af.AgentIdentityRecord
			if err := validateRecord(&rec); err != nil {
				return nil, &LoadError{Field: keyAgentIdentity, Err: err}
			}
			return &Credentials{Kind: KindAgentIdentity, AgentIdentity: &rec}, nil
		}
		return nil, fieldError(keyAgentIdentity, "auth_mode %q needs this member", AuthModeAgentIdentity)
	case AuthModePersonalAccessToken:
		if af.PersonalAccessToken == "" {
			return nil, fieldError(keyPersonalAccessToken, "auth_mode %q needs this member", AuthModePersonalAccessToken)
		}
		return patFromAuthFile(af)
	}
	// Mode names are not secret, so the value is quoted to help the user.
	return nil, &LoadError{Field: keyAuthMode, Err: fmt.Errorf("%w: %w %q", ErrInvalidAuthFile, ErrUnknownAuthMode, af.AuthMode)}
}

func apiKeyFromAuthFile(af *AuthFile) (*Credentials, error) {
	if err := headers.ValidateValue(headers.Authorization, *af.OpenAIAPIKey); err != nil {
		return nil, &LoadError{Field: keyOpenAIAPIKey, Err: err}
	}
	return &Credentials{Kind: KindAPIKey, APIKey: *af.OpenAIAPIKey}, nil
}

func patFromAuthFile(af *AuthFile) (*Credentials, error) {
	if err := headers.ValidateValue(headers.Authorization, af.PersonalAccessToken); err != nil {
		return nil, &LoadError{Field: keyPersonalAccessToken, Err: err}
	}
	return &Credentials{Kind: KindAPIKey, APIKey: af.PersonalAccessToken, PersonalAccessToken: true}, nil
}

func agentIdentityFromJWT(jwt string, decode func(string) (*identity.Record, error)) (*Credentials, error) {
	rec, err := decodeAgentIdentityJWT(decode, jwt)
	if err != nil {
		return nil, &LoadError{Field: keyAgentIdentity, Err: err}
	}
	return &Credentials{Kind: KindAgentIdentity, AgentIdentity: rec, AgentIdentityJWT: jwt}, nil
}

func decodeAgentIdentityJWT(decode func(string) (*identity.Record, error), jwt string) (*identity.Record, error) {
	if decode == nil {
		return nil, ErrNoJWTDecoder
	}
	rec, err := decode(jwt)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errors.New("DecodeAgentIdentityJWT returned no record")
	}
	cp := *rec // the caller's decoder may keep its own copy
	if err := validateRecord(&cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

// validateRecord checks that a record can sign and that its routing can be
// sent.
func validateRecord(rec *identity.Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	return headers.Routing{AccountID: rec.AccountID}.Validate()
}

// chatGPTFromAuthFile builds a ChatGPT login from af.Tokens, which must be
// non-nil.
func chatGPTFromAuthFile(af *AuthFile, externallyManaged bool) (*Credentials, error) {
	login, err := chatGPTLogin(af)
	if err != nil {
		return nil, err
	}
	login.ExternallyManaged = externallyManaged
	return &Credentials{Kind: KindChatGPT, ChatGPT: login}, nil
}

func chatGPTLogin(af *AuthFile) (*ChatGPTLogin, error) {
	t := af.Tokens
	if t == nil {
		return nil, fieldError(keyTokens, "missing")
	}
	if t.AccessToken == "" {
		return nil, fieldError(keyTokens+".access_token", "empty")
	}
	if err := headers.ValidateValue(headers.Authorization, t.AccessToken); err != nil {
		return nil, &LoadError{Field: keyTokens + ".access_token", Err: err}
	}
	login := &ChatGPTLogin{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		IDToken:      t.IDToken,
		AccountID:    t.AccountID,
	}
	if t.IDToken != "" {
		claims, err := parseIDToken(t.IDToken)
		if err != nil {
			return nil, &LoadError{Field: keyTokens + ".id_token", Err: fmt.Errorf("%w: %w", ErrInvalidAuthFile, err)}
		}
		if login.AccountID == "" {
			login.AccountID = claims.AccountID
		}
		login.FedRAMP = claims.FedRAMP
		login.UserID = claims.UserID
	}
	if login.UserID == "" {
		login.UserID = accessTokenClaims(t.AccessToken).UserID
	}
	if err := login.Routing().Validate(); err != nil {
		return nil, &LoadError{Field: keyTokens + ".account_id", Err: err}
	}
	if af.LastRefresh != nil {
		login.LastRefresh = *af.LastRefresh
	}
	return login, nil
}

// readAuthFile reads and parses path, following symlinks. A missing file
// is an error wrapping fs.ErrNotExist; every other error is a *LoadError
// with the path.
func readAuthFile(path string) (*AuthFile, os.FileInfo, error) {
	data, fi, err := readAuthBytes(path)
	if err != nil {
		return nil, nil, err
	}
	af, err := ParseAuthFile(data)
	if err != nil {
		return nil, nil, withPath(err, path)
	}
	return af, fi, nil
}

func readAuthBytes(path string) ([]byte, os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, pathError(path, err)
	}
	// Checked before opening: opening a FIFO for reading would block.
	if !fi.Mode().IsRegular() {
		return nil, nil, &LoadError{Path: path, Err: fmt.Errorf("%w: not a regular file", ErrInvalidAuthFile)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, pathError(path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, pathError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &LoadError{Path: path, Err: fmt.Errorf("%w: not a regular file", ErrInvalidAuthFile)}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxAuthFileSize+1))
	if err != nil {
		return nil, nil, pathError(path, err)
	}
	if len(data) > MaxAuthFileSize {
		return nil, nil, &LoadError{Path: path, Err: fmt.Errorf("%w: larger than %d bytes", ErrInvalidAuthFile, MaxAuthFileSize)}
	}
	return data, fi, nil
}

// pathError wraps an fs error without repeating the path.
func pathError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return &LoadError{Path: path, Err: err}
}
