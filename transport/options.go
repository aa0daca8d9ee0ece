package transport

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/internal/testhooks"
)

// Options configures [New] and [NewClient]. The zero value reads the
// credential, the flag and the identity store from the Codex home and the
// environment, as the Codex CLI does, and talks to the production
// services.
type Options struct {
	// Credential is what requests are authenticated with. Default: the
	// zero Credential, which means [Detect] over CodexHome.
	Credential Credential

	// CodexHome is the directory holding auth.json and config.toml.
	// Default: env CODEX_HOME, else ~/.codex.
	CodexHome string

	// BaseURL points every service (ChatGPT backend, AuthAPI, token
	// endpoint, JWKS) at one server, such as a local test server; plain
	// http is accepted on loopback only. Default: "", the production
	// services and their CODEX_* environment overrides.
	BaseURL string

	// AgentIdentity is the use_agent_identity switch, read on every
	// request; a *featureflag.Flag can be flipped at run time. Default:
	// env AGENTAUTH_USE_AGENT_IDENTITY, else config.toml (of CodexHome, or
	// of the home a detected Credential came from), else off.
	AgentIdentity Flag

	// AllowNoCredential makes a home without a usable credential pass
	// requests through unchanged. Default: false, [New] fails with
	// [ErrNoCredential] or [ErrNotChatGPTLogin].
	AllowNoCredential bool

	// HTTPClient sends every auth call: token refreshes, agent and task
	// registrations, the JWKS and the whoami lookup; a copy is used that
	// never follows a redirect. Default: a client over New's base.
	HTTPClient *http.Client

	// Getenv reads the environment. Default: os.Getenv.
	Getenv func(string) string

	// Observer receives events for metrics and traces (see the otelauth
	// module). Default: nil, no events, at no cost.
	Observer *Observer

	// Logger receives debug logs, which never hold a secret. Default:
	// nil, no logging.
	Logger *slog.Logger

	// Fleet shares one login between processes. Default: the zero Fleet,
	// auth.json on this machine.
	Fleet Fleet

	// Tuning holds the settings few callers change. Default: the zero
	// Tuning, whose fields state their own defaults.
	Tuning Tuning

	// hooks are the clock, randomness and environment tests inject (see
	// internal/testhooks); zero means the real ones.
	hooks testhooks.Hooks
}

// Fleet is how the replicas of a service share one ChatGPT login: the
// refresh, the provisioned agent identity and the thread tasks. The
// redisstore module provides all three.
type Fleet struct {
	// RefreshCoordinator builds, once per ChatGPT login read from
	// auth.json, the lock and store its refreshes go through (a Credential
	// from a constructor never uses it). Default: auth.json's own.
	RefreshCoordinator func(login Login, initial *TokenSet) (RefreshCoordinator, error)

	// IdentityStore keeps the agent identity provisioned from a ChatGPT
	// login, so every replica signs with one. Default: auth.json for a
	// login read from it, else memory.
	IdentityStore IdentityStore

	// TaskStore shares the task of each thread, so a thread served by
	// many replicas is registered once. Default: nil, tasks per process.
	TaskStore TaskStore
}

// Tuning holds the limits, timeouts and origin rules that have sound
// defaults. Contradictory or out-of-range values are rejected by [New].
type Tuning struct {
	// ChatGPTBaseURL and AuthAPIBaseURL name the two services separately,
	// when Options.BaseURL (which must then be empty) cannot. Default: the
	// production services, or their CODEX_* environment overrides.
	ChatGPTBaseURL, AuthAPIBaseURL string

	// AllowedOrigins replaces the first-party allow-list; ExtraOrigins
	// extends it. Default: the ChatGPT backend and https://api.openai.com.
	AllowedOrigins, ExtraOrigins []string

	// AllowInsecureHTTP permits plain-http origins on loopback hosts.
	// Default: false (Options.BaseURL on loopback sets it).
	AllowInsecureHTTP bool

	// MaxThreads bounds the thread tasks cached in memory, and ThreadIdleTTL
	// drops one unused that long. Default: 10,000 and 1 h.
	MaxThreads    int
	ThreadIdleTTL time.Duration

	// RegistrationTimeout bounds one task registration, AgentTimeout one
	// agent registration. Default: 30 s and 15 s.
	RegistrationTimeout, AgentTimeout time.Duration

	// MaxAssertionAge is how long one signed assertion is reused (whole
	// seconds). Default: one second.
	MaxAssertionAge time.Duration

	// ProvisioningCooldown is how long a login stays on Bearer after the
	// identity service was unavailable. Default: 1 h.
	ProvisioningCooldown time.Duration

	// InsecureSkipJWTVerify accepts an Agent Identity JWT without checking
	// its signature against the JWKS. Default: false, verified (the keys
	// are fetched within 10 s).
	InsecureSkipJWTVerify bool

	// Originator is the "originator" header of auth calls, for callers that
	// must look like a given Codex client. Default: none.
	Originator string
}

func init() {
	testhooks.Install(func(opts any) *testhooks.Hooks { return &opts.(*Options).hooks })
}
