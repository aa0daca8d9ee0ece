package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/testhooks"
)

// defaultProvisioningCooldown is how long a ChatGPT login stays on Bearer
// after agent provisioning was unavailable.
const defaultProvisioningCooldown = time.Hour

// defaultOpenAIOrigin is the second origin of the default allow-list.
const defaultOpenAIOrigin = "https://api.openai.com"

// config is the engine's configuration, which New fills from Options,
// Fleet, Tuning and the credential (detect.go). The zero value is valid
// and sends every request unchanged (no credential). Each field documents
// its default; the names are the engine's, not the user's.
type config struct {
	// Credentials is what requests are authenticated with. nil or
	// [credentials.KindNone] passes every request through unchanged, unless
	// TokenSource is set: a TokenSource alone means a ChatGPT login.
	Credentials *credentials.Credentials

	// TokenSource supplies the Bearer token of a ChatGPT login. nil means a
	// static source over Credentials.ChatGPT. Use
	// credentials.NewFileTokenSource to follow auth.json as the Codex CLI
	// refreshes it, or credentials.FromOAuth2 for an oauth2.TokenSource. If
	// it also implements credentials.Refresher, a 401 to a Bearer request
	// asks it once for a fresh token and replays the request once.
	TokenSource credentials.TokenSource

	// Flag is the use_agent_identity switch, read on every request so it can
	// be flipped at run time: a *featureflag.Flag, or any [Flag] (a
	// feature-flag service, a per-tenant rule). nil means off.
	Flag Flag

	// IdentityStore persists the agent identity provisioned for a ChatGPT
	// login when the flag is on, so later transports and processes reuse it.
	// It is trusted: transports sharing a store share the identity of every
	// login with the same account and user. nil means an in-memory table
	// that shares an identity only between transports holding the very
	// same access token, holds it weakly (freed once no transport uses it)
	// and is lost when the process exits; use a credentials.FileStore to
	// persist into auth.json as the Codex CLI does.
	IdentityStore credentials.IdentityStore

	// ChatGPTBaseURL is the ChatGPT backend base. "" means
	// identity.DefaultChatGPTBase. Its origin is first-party by default.
	ChatGPTBaseURL string

	// AuthAPIBaseURL is where agents and tasks are registered. "" means the
	// value derived from ChatGPTBaseURL and the
	// CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL environment variable. It must be
	// https, or http on a loopback host (agent registration sends the
	// ChatGPT access token there), and have no userinfo, query or fragment
	// (a path is fine).
	AuthAPIBaseURL string

	// AllowedOrigins replaces the first-party allow-list: only requests to
	// these origins ("scheme://host[:port]") get a credential. nil means the
	// origin of ChatGPTBaseURL plus https://api.openai.com. Use
	// ExtraOrigins to extend the default instead of replacing it.
	AllowedOrigins []string

	// ExtraOrigins are added to the allow-list (default or AllowedOrigins).
	ExtraOrigins []string

	// AllowInsecureHTTP permits plain-http origins on loopback hosts
	// (localhost, 127.0.0.0/8, ::1) in the allow-list, for development and
	// tests against a local server. Without it New rejects every http
	// origin; with it New still rejects an http origin on any other host,
	// since a credential sent there crosses the network in the clear.
	AllowInsecureHTTP bool

	// ThreadCache bounds the per-thread task cache: capacity (default
	// 10,000), idle TTL (default 1 h), registration timeout (default 30 s)
	// and failure backoff (default 1 s doubling to 1 min, jittered). Its Now
	// and Rand default to the transport's clock and jitter. The identity's
	// process task, shared by every transport of this process on that
	// identity, uses the same timeout and backoff: New fails for a second
	// transport on an identity whose timeout or backoff differ from the
	// first's.
	ThreadCache taskcache.CacheOptions

	// TaskStore shares thread tasks with other processes (replicas) so a
	// thread served by several of them registers one task, not one per
	// replica; see the redisstore module. nil means tasks are per process.
	// The in-process cache (ThreadCache) stays in front of it.
	TaskStore taskcache.TaskStore

	// MaxAssertionAge is how long one signed assertion is reused, in whole
	// seconds. 0 means one second: exactly what signing every request sends.
	MaxAssertionAge time.Duration

	// ProvisioningCooldown is how long a ChatGPT login falls back to Bearer
	// after agent provisioning, or a task registration for the identity
	// provisioned from it, was unavailable (429, 5xx, timeout or a
	// connection error after 3 attempts). 0 means defaultProvisioningCooldown.
	ProvisioningCooldown time.Duration

	// AgentTimeout bounds each agent-registration attempt; a provisioning
	// makes up to three. 0 means identity.DefaultAgentTimeout
	// (15 s); negative is rejected by New.
	AgentTimeout time.Duration

	// Software is what provisioning an identity says about this software
	// (the agent registration's abom: version, harness id, running
	// location); empty fields take identity's defaults.
	Software identity.Software

	// RegistrationClient sends agent and task registrations. nil means an
	// http.Client over the base transport that follows no redirects.
	RegistrationClient *http.Client

	// Originator is the "originator" header value sent on agent and task
	// registration and JWKS fetches, as Codex clients name themselves, for
	// callers that must look like a given Codex client. Default: no
	// header. $CODEX_INTERNAL_ORIGINATOR_OVERRIDE, when set, overrides it
	// on every auth call, as in Codex. Every auth call sends User-Agent
	// "agentauth/<version>".
	Originator string

	// Observer receives typed events (registrations, refreshes, 401
	// recoveries, Bearer fallbacks, signatures, cache removals) for metrics
	// and traces; see the otelauth module. nil means none, at no cost.
	Observer *Observer

	// Logger receives debug logs; credentials are never logged. nil means
	// no logging.
	Logger *slog.Logger

	// hooks are the clock, randomness and environment tests inject (see
	// internal/testhooks); zero means the real ones.
	hooks testhooks.Hooks
}

// settings is a validated config with every default applied.
type settings struct {
	config
	testhooks.Hooks // every field set
	authAPIBase     string
	origins         originSet

	cacheOnTransportClock bool // ThreadCache.Now was left to default to Now
}

func (c config) resolve() (*settings, error) {
	s := &settings{config: c, Hooks: c.hooks}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	if s.Getenv == nil {
		s.Getenv = os.Getenv
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.ChatGPTBaseURL == "" {
		s.ChatGPTBaseURL = identity.DefaultChatGPTBase
	}
	bases := identity.ResolveBaseURLs(s.Getenv, s.ChatGPTBaseURL)
	s.authAPIBase = strings.TrimRight(s.AuthAPIBaseURL, "/")
	if s.authAPIBase == "" {
		s.authAPIBase = bases.AuthAPI
	}
	// Agent registration sends the ChatGPT access token to this base, so it
	// gets the same scheme rule as the first-party origins.
	if err := checkBase("AuthAPI base", s.authAPIBase); err != nil {
		return nil, err
	}
	if s.ProvisioningCooldown == 0 {
		s.ProvisioningCooldown = defaultProvisioningCooldown
	}
	if s.ProvisioningCooldown < 0 {
		return nil, errors.New("transport: ProvisioningCooldown is negative")
	}
	if s.AgentTimeout < 0 {
		return nil, errors.New("transport: AgentTimeout is negative")
	}
	if s.MaxAssertionAge < 0 || (s.MaxAssertionAge > 0 && s.MaxAssertionAge < time.Second) {
		return nil, fmt.Errorf("transport: MaxAssertionAge %v must be 0 or at least one second", s.MaxAssertionAge)
	}
	if s.ThreadCache.Now == nil {
		s.ThreadCache.Now = s.Now
		s.cacheOnTransportClock = true
	}
	if s.ThreadCache.Rand == nil {
		s.ThreadCache.Rand = s.Rand
	}

	list := s.AllowedOrigins
	if list == nil {
		list = []string{s.ChatGPTBaseURL, defaultOpenAIOrigin}
	}
	list = append(append([]string(nil), list...), s.ExtraOrigins...)
	for _, raw := range list {
		o, err := parseOrigin(raw)
		if err != nil {
			return nil, err
		}
		if o.scheme == "http" {
			if !isLoopback(o.host) {
				return nil, fmt.Errorf("transport: origin %s is plain http on a non-loopback host; use https", o)
			}
			if !s.AllowInsecureHTTP {
				return nil, fmt.Errorf("transport: origin %s is plain http; set AllowInsecureHTTP to allow it on loopback", o)
			}
		}
		s.origins = append(s.origins, o)
	}

	if c := s.Credentials; c != nil {
		switch c.Kind {
		case credentials.KindNone:
		case credentials.KindAPIKey:
			if c.APIKey == "" {
				return nil, errors.New("transport: API-key credentials without a key")
			}
		case credentials.KindChatGPT:
			if c.ChatGPT == nil && s.TokenSource == nil {
				return nil, errors.New("transport: ChatGPT credentials without tokens or a TokenSource")
			}
			if s.TokenSource == nil {
				// A static token that cannot be sent fails here, not on
				// every request.
				if _, err := headers.Bearer(c.ChatGPT.AccessToken); err != nil {
					return nil, fmt.Errorf("transport: ChatGPT access token: %w", err)
				}
				if err := c.ChatGPT.Routing().Validate(); err != nil {
					return nil, fmt.Errorf("transport: ChatGPT account: %w", err)
				}
			}
		case credentials.KindAgentIdentity:
			if c.AgentIdentity == nil {
				return nil, errors.New("transport: Agent Identity credentials without a record")
			}
			if err := c.AgentIdentity.Validate(); err != nil {
				return nil, fmt.Errorf("transport: agent identity: %w", err)
			}
		default:
			return nil, fmt.Errorf("transport: unknown credential kind %v", c.Kind)
		}
		if s.TokenSource != nil && c.Kind != credentials.KindChatGPT {
			return nil, fmt.Errorf("transport: TokenSource is only used with ChatGPT credentials, not %v", c.Kind)
		}
	}
	return s, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535
}

// checkBase requires an https base URL, or http on a loopback host.
func checkBase(what, base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("transport: %s is not an absolute URL", what)
	}
	// Registration paths are appended to the base, so anything after the
	// path would end up in the middle of every registration URL; userinfo
	// would be sent to the AuthAPI as credentials.
	switch {
	case u.User != nil:
		return fmt.Errorf("transport: %s must not contain userinfo", what)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("transport: %s %s must not have a query", what, u.Host)
	case u.Fragment != "" || strings.Contains(base, "#"):
		return fmt.Errorf("transport: %s %s must not have a fragment", what, u.Host)
	case u.Port() != "" && !validPort(u.Port()):
		return fmt.Errorf("transport: %s %s has an invalid port", what, u.Host)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("transport: %s %s is plain http on a non-loopback host; use https", what, u.Host)
	}
	return fmt.Errorf("transport: %s %q: scheme must be https or http", what, base)
}
