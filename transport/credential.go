package transport

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/transporthook"
)

// The seams a fleet store or a custom login implements. They are defined
// by the engine under internal/ and named here once.
type (
	// TokenSource supplies the access token of a ChatGPT login; if it also
	// has Refresh(ctx, rejected *Token) (*Token, error), a 401 asks it once
	// for a fresh token. See [ChatGPT].
	TokenSource = credentials.TokenSource
	// Token is one access token of a ChatGPT login with its account.
	Token = credentials.Token
	// Secret is a credential string that prints, logs and marshals
	// redacted; Reveal returns it.
	Secret = identity.Secret
	// TokenSet is a login's tokens as a [RefreshCoordinator] stores them.
	TokenSet = credentials.TokenSet
	// Login names a ChatGPT login by account and user.
	Login = credentials.Login
	// RefreshCoordinator is the lock and store a login's refreshes go
	// through, so that one process refreshes it at a time.
	RefreshCoordinator = credentials.RefreshCoordinator
	// IdentityStore keeps the agent identity provisioned from a login.
	IdentityStore = credentials.IdentityStore
	// IdentityRecord is an agent identity: its runtime, key and account.
	IdentityRecord = identity.Record
	// TaskStore shares thread tasks between processes.
	TaskStore = taskcache.TaskStore
	// TaskKey names a thread task across processes (not a secret).
	TaskKey = taskcache.StoreKey
)

// Credential is what a [Transport] authenticates with. It is built by
// [APIKey], [BearerToken], [ChatGPT], [AgentIdentity], [AgentIdentityJWT]
// or [Detect]; the zero Credential asks [New] to detect one. Printing it
// never shows a secret.
type Credential struct{ c *credential }

// credential is the sealed content of a Credential.
type credential struct {
	creds *credentials.Credentials // Kind says which fields are set
	src   credentials.TokenSource  // a ChatGPT login's tokens, if not static
	store credentials.IdentityStore
	coord credentials.RefreshCoordinator // the refreshing source's, when Detect built one
	jwt   identity.Secret                // an Agent Identity JWT that New verifies
	err   error                          // bad input, reported by New

	detected bool   // read by Detect: its token source is ours to close
	home     string // the Codex home Detect read, whose config.toml holds the flag
	mu       sync.Mutex
	users    int  // transports built with it and not yet closed
	closed   bool // a detected login whose last transport closed: it no longer refreshes
}

// APIKey is an OpenAI API key, sent as "Authorization: Bearer <key>".
func APIKey(key string) Credential {
	return Credential{&credential{creds: credentials.APIKey(key)}}
}

// BearerToken is a ChatGPT access token with its account (and FedRAMP
// bit): sent as Bearer with the account's routing headers, never
// refreshed. Its user, to which an agent identity is bound, comes from the
// token's own claims.
func BearerToken(accessToken, accountID string, fedRAMP bool) Credential {
	return Credential{&credential{creds: credentials.ChatGPTToken(accessToken, accountID, fedRAMP)}}
}

// ChatGPT is a ChatGPT login over src, which the transport asks for a
// token on every request, and once more after a 401 when src can refresh.
// The account routing comes from each token.
func ChatGPT(src TokenSource) Credential {
	c := &credential{creds: &credentials.Credentials{Kind: credentials.KindChatGPT, Source: "a TokenSource"}, src: src}
	if src == nil {
		c.err = errors.New("transport: ChatGPT(nil): no token source")
	}
	return Credential{c}
}

// AgentIdentity is an Agent Identity record in the JSON form `agentauth
// keygen` and the Codex CLI write. The error names the bad field, never
// the key.
func AgentIdentity(recordJSON []byte) (Credential, error) {
	creds, err := credentials.AgentIdentityRecord(recordJSON)
	if err != nil {
		return Credential{}, fmt.Errorf("transport: %w", err)
	}
	return Credential{&credential{creds: creds}}, nil
}

// AgentIdentityJWT is an Agent Identity JWT (auth.json agent_identity, env
// CODEX_AGENT_IDENTITY). [New] verifies it against the JWKS of the ChatGPT
// backend, unless Tuning.InsecureSkipJWTVerify.
func AgentIdentityJWT(jwt string) Credential {
	c := &credential{creds: &credentials.Credentials{Kind: credentials.KindAgentIdentity, Source: "an Agent Identity JWT"}, jwt: identity.Secret(jwt)}
	if jwt == "" {
		c.err = errors.New("transport: AgentIdentityJWT(\"\"): empty token")
	}
	return Credential{c}
}

// Format prints the credential's kind and where it came from, never its
// secret, under every verb: fmt.Sprint(cred) is "ChatGPT login from
// /home/me/.codex/auth.json". Without it a verb fmt has no rule for (%t,
// %d, ...) would print the sealed fields one by one.
func (c Credential) Format(f fmt.State, _ rune) { io.WriteString(f, c.describe()) }

func (c Credential) describe() string {
	if c.c == nil || c.c.creds == nil {
		return "no credential"
	}
	cr := c.c.creds
	var what string
	switch {
	case cr.PersonalAccessToken:
		what = "personal access token"
	case cr.Kind == credentials.KindAPIKey:
		what = "API key"
	case cr.Kind == credentials.KindChatGPT:
		what = "ChatGPT login"
	case cr.Kind == credentials.KindAgentIdentity:
		what = "Agent Identity"
	default:
		return "no credential"
	}
	if cr.Source == "" {
		return what
	}
	return what + " from " + cr.Source
}

func init() {
	transporthook.CredentialOf = func(c any) *credentials.Credentials {
		if cr := c.(Credential).c; cr != nil {
			return cr.creds
		}
		return nil
	}
	transporthook.NewCredential = func(creds *credentials.Credentials) any {
		return Credential{&credential{creds: creds}}
	}
}

// acquire counts one more transport on c; false for a detected login whose
// transports were all closed, since it can no longer refresh.
func (c *credential) acquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.users++
	return true
}

// release counts one transport less; true when it was the last one of a
// detected login, whose background work the caller then stops.
func (c *credential) release() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users--
	if c.users > 0 || !c.detected {
		return false
	}
	c.closed = true
	return true
}
