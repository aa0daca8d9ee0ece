package identitytest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
)

// The defaults of [Options] fields left zero.
const (
	// DefaultMaxSkew is the clock skew allowed when [Options.MaxSkew] is zero.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultTokenLifetime is the access-token lifetime when
	// [Options.TokenLifetime] is zero.
	DefaultTokenLifetime = time.Hour
)

// defaultRequestLog is how many protected-resource requests [Server.Requests]
// keeps when [Options.RequestLog] is zero.
const defaultRequestLog = 1000

// Options configures a [Server]. The zero value is a usable server on a
// random loopback port that accepts no Bearer token and only verified
// AgentAssertion headers at its protected resources.
type Options struct {
	// AccessTokens are the ChatGPT access tokens the server accepts as
	// "Authorization: Bearer <token>" both at agent registration
	// (POST /v1/agent/register) and at protected resources. Default: none.
	AccessTokens []string

	// AccessTokenAccounts maps configured access tokens to the ChatGPT
	// account each belongs to, as the account claim of a real access token
	// does. Each key is accepted as if listed in AccessTokens. Agent
	// registration takes a runtime's account from its Bearer token, as the
	// real AuthAPI does (current Codex sends no account header there): a
	// token the token endpoint issued carries its account in its claims, a
	// token listed here has the account given. Default: none.
	AccessTokenAccounts map[string]string

	// APIKeys are the API keys accepted as Bearer tokens at protected
	// resources only; agent registration rejects them, as the real
	// backend does. Default: none.
	APIKeys []string

	// PersonalAccessTokens are the personal access tokens the whoami route
	// (GET .../v1/user-auth-credential/whoami) describes, each with the
	// account fields of the login it acts for (AccountID required; an
	// empty Email is answered as null, PlanType as given); they are also
	// accepted as Bearer tokens at protected resources, but not at agent
	// registration. Default: none.
	PersonalAccessTokens map[string]Login

	// AcceptAnyBearerForAgentRegistration makes agent registration accept
	// any non-empty Bearer token, for clients whose login token the test
	// does not know. Protected resources still accept only AccessTokens and
	// APIKeys. Default: false.
	AcceptAnyBearerForAgentRegistration bool

	// AllowAnonymous makes protected resources answer a request without an
	// Authorization header with 200 and mode "none" (useful as a stand-in
	// for a third-party origin that must receive no credential). A request
	// with a bad credential is still rejected. Default: false, such requests
	// get 401.
	AllowAnonymous bool

	// EncryptTaskIDs makes task registration answer {"encrypted_task_id":
	// ...}, a sealed box addressed to the runtime's key, instead of
	// {"task_id": ...}. Default: false.
	EncryptTaskIDs bool

	// MaxSkew is how far a registration or assertion timestamp may be from
	// Now, in either direction. Zero means DefaultMaxSkew (5 minutes);
	// negative is an error.
	MaxSkew time.Duration

	// Now is the server's clock, used only for the skew checks. Default:
	// time.Now. Latency faults always use real time.
	Now func() time.Time

	// Addr is the address to listen on. Default: "127.0.0.1:0", a random
	// loopback port.
	Addr string

	// Logger receives one debug record per request (route, status and
	// rejection reason; never a credential). Default: discard.
	Logger *slog.Logger

	// Rand is the source of runtime ids, task ids and sealed-box ephemeral
	// keys. It is read under a lock, so a deterministic reader is safe.
	// Default: crypto/rand.
	Rand io.Reader

	// RequestLog is how many protected-resource requests [Server.Requests]
	// keeps, oldest dropped first. Zero means 1000; negative
	// keeps none.
	RequestLog int

	// MaxRegistrations bounds the runtimes plus tasks the server holds, so
	// a long-running server cannot be grown without limit; once it is
	// reached, agent and task registrations answer 429 with reason
	// "capacity". Zero means no limit (tests).
	MaxRegistrations int

	// WebSocket, when set, serves WebSocket upgrades at protected
	// resources. A GET with "Connection: upgrade" and "Upgrade: websocket"
	// to any path under /v1/ is authenticated exactly like every other
	// protected request (401, and no upgrade, when that fails), then
	// recorded in [Server.Requests] with Status 101, counted, and handed to
	// WebSocket with what the server verified. From then on the function
	// owns the exchange: it upgrades the connection (for example with
	// github.com/coder/websocket's Accept; identitytest itself imports no
	// WebSocket library) and serves it. r's context is also cancelled when
	// the Server closes, and the function must return soon after, because
	// [Server.Close] waits for it. Default: nil, upgrade requests get the
	// plain JSON [Echo] like any other request.
	WebSocket func(w http.ResponseWriter, r *http.Request, echo Echo)

	// TokenLifetime is the lifetime of the access tokens the token
	// endpoint issues (by Now). Default: DefaultTokenLifetime (1 h).
	TokenLifetime time.Duration
	// RefreshTokenLifetime makes refresh tokens older than this fail with
	// refresh_token_expired. Default: zero, they do not expire.
	RefreshTokenLifetime time.Duration
	// OAuthClientID is the client id the token endpoint accepts. Default:
	// the Codex CLI's.
	OAuthClientID string
}

// validate rejects settings that cannot work. Errors never quote a token.
func (o *Options) validate() error {
	if o.MaxSkew < 0 {
		return errors.New("identitytest: MaxSkew must not be negative")
	}
	for i, tok := range o.AccessTokens {
		if err := validateToken(tok); err != nil {
			return fmt.Errorf("identitytest: AccessTokens[%d]: %w", i, err)
		}
	}
	for tok, acct := range o.AccessTokenAccounts {
		if err := validateToken(tok); err != nil {
			return fmt.Errorf("identitytest: AccessTokenAccounts: %w", err)
		}
		if acct == "" {
			return errors.New("identitytest: AccessTokenAccounts: an account id is empty")
		}
	}
	for i, tok := range o.APIKeys {
		if err := validateToken(tok); err != nil {
			return fmt.Errorf("identitytest: APIKeys[%d]: %w", i, err)
		}
	}
	return validatePersonalAccessTokens(o.PersonalAccessTokens)
}

func validateToken(tok string) error {
	if tok == "" {
		return errors.New("empty token")
	}
	return headers.ValidateValue(headers.Authorization, tok)
}

// lockedReader serialises reads so that handlers running concurrently can
// share one caller-supplied (possibly deterministic) source.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func newLockedReader(r io.Reader) *lockedReader {
	if r == nil {
		r = rand.Reader
	}
	return &lockedReader{r: r}
}

// summary describes the options with every token and key redacted: only
// their counts are shown.
func (o Options) summary() string {
	return fmt.Sprintf("identitytest.Options{AccessTokens:%d redacted AccessTokenAccounts:%d redacted APIKeys:%d redacted AcceptAnyBearerForAgentRegistration:%t AllowAnonymous:%t EncryptTaskIDs:%t MaxSkew:%s Addr:%q RequestLog:%d}",
		len(o.AccessTokens), len(o.AccessTokenAccounts), len(o.APIKeys), o.AcceptAnyBearerForAgentRegistration, o.AllowAnonymous,
		o.EncryptTaskIDs, o.MaxSkew, o.Addr, o.RequestLog)
}

// Format makes every fmt verb print the options with every token and key
// redacted: only their counts are shown.
func (o Options) Format(f fmt.State, _ rune) { io.WriteString(f, o.summary()) }

// LogValue logs the options without tokens.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.summary()) }
