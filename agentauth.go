// Package agentauth builds, in one call, an HTTP transport that
// authenticates requests to the ChatGPT/Codex backend the way the Codex CLI
// does, from a Codex home directory: the credential of auth.json and the
// environment (an Agent Identity JWT verified against the JWKS), the
// use_agent_identity flag (environment and config.toml), a ChatGPT login
// that refreshes itself and shares auth.json with a Codex CLI running
// beside it, and auth.json as the store of an agent identity provisioned
// from that login.
//
// The replicas of a fleet that share one ChatGPT login plug a shared store
// into the same call (Options.RefreshCoordinator, IdentityStore and
// TaskStore; package redisstore provides all three), so that the login is
// refreshed once per expiry fleet-wide and every replica signs with one
// agent identity and shares thread tasks.
//
// The packages it assembles (credentials, featureflag, transport) remain
// available for callers that want to wire things by hand.
package agentauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/internal/useragent"
	"github.com/agentauth/agentauth/transport"
)

// DefaultJWKSTimeout bounds fetching the JWKS that verifies an Agent
// Identity JWT, when Options.JWKSTimeout is zero.
const DefaultJWKSTimeout = 10 * time.Second

// ErrNoCredential is returned by [NewTransport] and [Load] when neither
// the Codex home nor the environment holds a credential and
// Options.AllowNoCredential is not set.
var ErrNoCredential = errors.New("agentauth: no credential: log in with the Codex CLI (codex login), or set CODEX_API_KEY or OPENAI_API_KEY")

// Options configures [NewTransport], [NewClient] and [Load]. The zero value
// reads the real environment and ~/.codex (or $CODEX_HOME).
type Options struct {
	// CodexHome is the directory holding auth.json and config.toml.
	// Default: env CODEX_HOME, else ~/.codex.
	CodexHome string

	// Getenv reads environment variables, for the credential, the flag,
	// the refresh overrides and the transport's base-URL
	// overrides. Default: os.Getenv.
	Getenv func(string) string

	// BaseURL, when set, points everything at one server, such as a local
	// or test server (identitytest.Server.URL()), in one setting: it is
	// the ChatGPT backend base and the AuthAPI base (Config.ChatGPTBaseURL
	// and AuthAPIBaseURL, which must then be empty), the base of the JWKS,
	// and BaseURL+"/oauth/token" is the token endpoint of refreshes; its
	// origin is the first-party origin (with api.openai.com, unless
	// Config.AllowedOrigins says otherwise). The environment overrides of
	// these (CODEX_REFRESH_TOKEN_URL_OVERRIDE, CODEX_AUTHAPI_BASE_URL,
	// CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL,
	// CODEX_AGENT_IDENTITY_JWKS_BASE_URL) are then not read. Plain http is
	// allowed (Config.AllowInsecureHTTP is set) only when BaseURL's host is
	// loopback; any other http BaseURL is an error wrapping
	// [ErrInvalidBaseURL]. Default: "", the production services.
	BaseURL string

	// UseAgentIdentity, when non-nil, sets the use_agent_identity flag;
	// the environment and config.toml are then not consulted. Default:
	// env AGENTAUTH_USE_AGENT_IDENTITY (1/true/yes/on or 0/false/no/off;
	// any other value is an error), else [features] use_agent_identity in
	// config.toml, else off.
	UseAgentIdentity *bool

	// InsecureSkipJWTVerify decodes an Agent Identity JWT (auth.json
	// agent_identity, env CODEX_ACCESS_TOKEN or CODEX_AGENT_IDENTITY)
	// without verifying its signature. Default: false, the JWT is verified
	// against the JWKS of the ChatGPT backend (or of env
	// CODEX_AGENT_IDENTITY_JWKS_BASE_URL), fetched over https or from a
	// loopback test server only.
	InsecureSkipJWTVerify bool

	// JWKSTimeout bounds the JWKS fetch. Default: [DefaultJWKSTimeout].
	JWKSTimeout time.Duration

	// HTTPClient sends the JWKS fetch, ChatGPT token refreshes and the
	// account lookup of a personal access token.
	// Default: a client on the base transport given to NewTransport (or
	// http.DefaultTransport). Both use a copy that never follows a
	// redirect (its CheckRedirect is replaced): a redirect could carry the
	// refresh token to another origin, or fetch the keys from a URL the
	// https-only rule never saw.
	HTTPClient *http.Client

	// RefreshCoordinator, when set, builds the coordinator on which the
	// refreshing token source of a ChatGPT login takes its refresh lock,
	// reads the current tokens and stores rotated ones. It is called once,
	// with the login's account and user and the tokens auth.json holds,
	// which seed a shared store that has none yet (a store that has a
	// newer set keeps it). Set it to share the login between the replicas
	// of a fleet, for example to redisstore's Store.Coordinators: refresh
	// tokens are single use, and two replicas refreshing one login at once
	// log it out. It is not called for other credentials, for tokens an
	// outside host refreshes (auth_mode chatgptAuthTokens), or when
	// Config.TokenSource is set. Default: auth.json itself
	// (credentials.NewAuthFileCoordinator): one refresh at a time among
	// the processes of this machine, the Codex CLI included, under Codex's
	// lock file, with rotated tokens written back to auth.json.
	RefreshCoordinator func(login credentials.Login, initial *credentials.TokenSet) (credentials.RefreshCoordinator, error)

	// IdentityStore keeps the agent identity provisioned from a ChatGPT
	// login while the use_agent_identity flag is on. Set it to a fleet's
	// shared store (a redisstore.Store) so the fleet provisions one
	// identity per login and every replica signs with it. It is
	// Config.IdentityStore; setting both is an error.
	// Default: for a ChatGPT login from auth.json, auth.json itself (a
	// credentials.FileStore, in the record form the Codex CLI reads, so
	// the CLI and this process share one identity); otherwise none, and
	// each transport keeps the identity it provisions in memory.
	IdentityStore credentials.IdentityStore

	// TaskStore shares the task of each conversation thread with other
	// processes (a redisstore.Store), so a thread served by a whole fleet
	// is registered once. It is Config.TaskStore; setting both is an
	// error. Default: none, each transport
	// registers the threads it serves and caches their tasks in memory.
	TaskStore taskcache.TaskStore

	// AllowNoCredential makes a Codex home without any credential build a
	// transport that passes requests through unchanged. Default: false,
	// that is an error wrapping [ErrNoCredential]. A Codex login that
	// cannot call the ChatGPT backend (Bedrock, host-provided headers) is
	// then passed through too, instead of the error wrapping
	// [credentials.ErrNotChatGPTLogin].
	AllowNoCredential bool

	// Config configures the transport for everything else: base URLs,
	// allowed origins, caches, timeouts, logging. Its Credentials,
	// TokenSource, Flag and IdentityStore are filled in from the Codex
	// home unless already set. Default: the zero transport.Config, whose
	// fields document their own defaults.
	Config transport.Config
}

// Setup is what [Load] found in the Codex home, ready to build a
// transport with [Setup.Transport].
type Setup struct {
	// CodexHome is the directory that was read.
	CodexHome string
	// Credentials is the credential in use (its Source says where it came
	// from). A personal access token is here as the ChatGPT login it is
	// sent as, with the account the AuthAPI gave for it and
	// PersonalAccessToken set.
	Credentials *credentials.Credentials
	// Flag is the use_agent_identity switch: Config.Flag when set, else a
	// *featureflag.Flag loaded from the environment and config.toml, which
	// can be flipped at run time.
	Flag transport.Flag
	// TokenSource is, for a ChatGPT login, the refreshing source over
	// auth.json (a [credentials.RefreshingTokenSource]), or, for tokens an
	// outside host refreshes (auth_mode chatgptAuthTokens), a source that
	// re-reads auth.json; nil for other credentials.
	TokenSource credentials.TokenSource
	// RefreshCoordinator is the coordinator of the refreshing TokenSource:
	// the one Options.RefreshCoordinator built, or auth.json's; nil when
	// TokenSource is not a refreshing source Load built.
	RefreshCoordinator credentials.RefreshCoordinator
	// IdentityStore is Options.IdentityStore when set, else auth.json (a
	// [credentials.FileStore]) for a ChatGPT login, so a provisioned agent
	// identity is shared with the Codex CLI; nil otherwise.
	IdentityStore credentials.IdentityStore

	config transport.Config
}

// Load reads the Codex home as [NewTransport] does, without building the
// transport, for callers that inspect the credential first.
func Load(ctx context.Context, opts Options) (*Setup, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	home := opts.CodexHome
	if home == "" {
		h, err := credentials.DefaultCodexHome(getenv)
		if err != nil {
			return nil, err
		}
		home = h
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	cfg := opts.Config
	if opts.BaseURL != "" {
		var err error
		if getenv, err = pointAtBaseURL(opts.BaseURL, &cfg, getenv); err != nil {
			return nil, err
		}
	}
	if h := testhooks.Of(&cfg); h.Getenv == nil {
		h.Getenv = getenv
	}
	var err error
	if cfg.IdentityStore, err = pick("IdentityStore", opts.IdentityStore, cfg.IdentityStore); err != nil {
		return nil, err
	}
	if cfg.TaskStore, err = pick("TaskStore", opts.TaskStore, cfg.TaskStore); err != nil {
		return nil, err
	}
	s := &Setup{CodexHome: home}

	creds := cfg.Credentials
	if creds == nil && cfg.TokenSource == nil {
		if creds, cfg.TokenSource, err = workloadIdentity(getenv, home, client); err != nil {
			return nil, err
		}
	}
	if creds == nil {
		var err error
		creds, err = credentials.Load(credentials.LoadOptions{
			CodexHome: home,
			Getenv:    getenv,
			DecodeAgentIdentityJWT: func(token string) (*identity.Record, error) {
				return decodeJWT(ctx, opts, getenv, client, cfg.ChatGPTBaseURL, token)
			},
		})
		if errors.Is(err, credentials.ErrNotChatGPTLogin) && opts.AllowNoCredential {
			// A Bedrock or host-provided login: nothing of it is sent to
			// the ChatGPT backend, so requests pass through.
			creds, err = &credentials.Credentials{Kind: credentials.KindNone}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if creds.Kind == credentials.KindNone && cfg.TokenSource != nil {
		// The caller's token source is the login (a command, a federation,
		// an OAuth2 source): its tokens carry their own routing.
		creds = &credentials.Credentials{Kind: credentials.KindChatGPT, Source: "Config.TokenSource"}
	}
	if creds.Kind == credentials.KindNone && cfg.TokenSource == nil && !opts.AllowNoCredential {
		return nil, fmt.Errorf("%w (looked in %s and the environment)", ErrNoCredential, filepath.Join(home, credentials.AuthFileName))
	}
	if creds.Kind == credentials.KindAPIKey && creds.PersonalAccessToken {
		if creds, err = hydratePersonalAccessToken(ctx, cfg, client, creds); err != nil {
			return nil, err
		}
	}
	s.Credentials = creds

	flag := cfg.Flag
	if flag == nil {
		loaded, err := featureflag.Load(featureflag.Options{CodexHome: home, Getenv: getenv, Value: opts.UseAgentIdentity})
		if err != nil {
			return nil, err
		}
		flag = loaded
	}
	s.Flag = flag

	src, store := cfg.TokenSource, cfg.IdentityStore
	if creds.Kind == credentials.KindChatGPT && !creds.PersonalAccessToken && creds.Source == filepath.Join(home, credentials.AuthFileName) {
		path := filepath.Join(home, credentials.AuthFileName)
		if src == nil {
			if creds.ChatGPT.ExternallyManaged {
				src = credentials.NewFileTokenSource(path)
			} else {
				coord, err := refreshCoordinator(opts, home, creds.ChatGPT)
				if err != nil {
					return nil, err
				}
				s.RefreshCoordinator = coord
				rs, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
					Coordinator: coord,
					HTTPClient:  client,
					Getenv:      getenv,
					Logger:      cfg.Logger,
					Now:         testhooks.Of(&cfg).Now, // the transport's clock (nil: time.Now)
				})
				if err != nil {
					return nil, err
				}
				src = rs
			}
		}
		if store == nil {
			store = credentials.NewFileStore(path)
		}
	}
	s.TokenSource, s.IdentityStore = src, store
	cfg.Credentials, cfg.Flag, cfg.TokenSource, cfg.IdentityStore = creds, flag, src, store
	s.config = cfg
	return s, nil
}

// pick merges an Options store with the same field of Config: whichever
// is set (both is an error: one of them would be silently ignored).
func pick[T comparable](name string, fromOpts, fromConfig T) (T, error) {
	var zero T // a nil interface
	switch {
	case fromOpts == zero:
		return fromConfig, nil
	case fromConfig == zero:
		return fromOpts, nil
	}
	return zero, fmt.Errorf("agentauth: Options.%s and Options.Config.%s are both set; set one", name, name)
}

// refreshCoordinator returns the coordinator of a ChatGPT login loaded
// from auth.json: Options.RefreshCoordinator's, else auth.json's.
func refreshCoordinator(opts Options, home string, login *credentials.ChatGPTLogin) (credentials.RefreshCoordinator, error) {
	if opts.RefreshCoordinator == nil {
		return credentials.NewAuthFileCoordinator(home), nil
	}
	initial := &credentials.TokenSet{IDToken: login.IDToken, AccessToken: login.AccessToken,
		RefreshToken: login.RefreshToken, AccountID: login.AccountID, LastRefresh: login.LastRefresh}
	coord, err := opts.RefreshCoordinator(credentials.Login{AccountID: login.AccountID, UserID: login.UserID}, initial)
	if err != nil {
		return nil, fmt.Errorf("agentauth: Options.RefreshCoordinator: %w", err)
	}
	if coord == nil {
		return nil, errors.New("agentauth: Options.RefreshCoordinator returned no coordinator")
	}
	return coord, nil
}

// Transport builds the transport over base (nil means
// http.DefaultTransport).
func (s *Setup) Transport(base http.RoundTripper) (*transport.Transport, error) {
	return transport.New(base, s.config)
}

// Close stops a background token refresh in flight (a refresh ends by
// itself within its timeout otherwise), releases the refresher's idle
// connections and closes the RefreshCoordinator when it has a Close
// method (a fleet coordinator's background publish). The transport keeps
// working with the current token.
func (s *Setup) Close() {
	if c, ok := s.TokenSource.(interface{ Close() }); ok {
		c.Close()
	}
	// A fleet coordinator may be publishing a rotation in the background.
	if c, ok := s.RefreshCoordinator.(interface{ Close() }); ok {
		c.Close()
	}
}

// Config returns the transport configuration Load assembled.
func (s *Setup) Config() transport.Config { return s.config }

// NewTransport reads the Codex home (see [Options] for every default) and
// returns a transport over base (nil means http.DefaultTransport) that
// authenticates requests with what it found:
//
//   - the credential, in Codex's order: env CODEX_API_KEY, env
//     CODEX_ACCESS_TOKEN, env CODEX_AGENT_IDENTITY, auth.json, env
//     OPENAI_API_KEY;
//   - for a ChatGPT login, a token source that refreshes the login itself
//     (ahead of expiry, once per login across processes and with the Codex
//     CLI, or across a fleet with Options.RefreshCoordinator) and auth.json
//     (or Options.IdentityStore) as the store of an agent identity
//     provisioned from it when the flag is on;
//   - for a personal access token, its account, asked of the AuthAPI
//     (GET /v1/user-auth-credential/whoami) as Codex does: it is then sent
//     as Bearer with that account's routing headers, never refreshed, and
//     no agent identity is provisioned from it;
//   - the use_agent_identity flag.
func NewTransport(base http.RoundTripper, opts Options) (*transport.Transport, error) {
	if opts.HTTPClient == nil {
		rt := base
		if rt == nil {
			rt = http.DefaultTransport
		}
		opts.HTTPClient = &http.Client{Transport: rt}
	}
	ctx := context.Background()
	s, err := Load(ctx, opts)
	if err != nil {
		return nil, err
	}
	return s.Transport(base)
}

// NewClient is [NewTransport] over http.DefaultTransport, wrapped in an
// http.Client.
func NewClient(opts Options) (*http.Client, error) {
	t, err := NewTransport(nil, opts)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// decodeJWT verifies an Agent Identity JWT against the JWKS, or decodes it
// unverified when asked to.
func decodeJWT(ctx context.Context, opts Options, getenv func(string) string, client *http.Client, chatgptBase, token string) (*identity.Record, error) {
	if opts.InsecureSkipJWTVerify {
		return identity.DecodeAgentIdentityJWTUnverified(token)
	}
	url := identity.JWKSURL(identity.ResolveBaseURLs(getenv, chatgptBase).JWKS)
	if !strings.HasPrefix(url, "https://") && !identity.IsLoopbackBase(url) {
		return nil, errors.New("agentauth: the JWKS base is plain http on a non-loopback host; refusing to trust keys fetched from it")
	}
	timeout := opts.JWKSTimeout
	if timeout <= 0 {
		timeout = DefaultJWKSTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The https-only rule above holds for the URL the keys come from only
	// if no redirect is followed (https → http, or to another origin): a
	// 3xx answer fails the fetch.
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	jwks := &identity.Client{HTTPClient: &noRedirects, Originator: useragent.Originator(opts.Config.Originator, getenv)}
	keys, err := jwks.FetchJWKS(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("agentauth: cannot verify the agent identity JWT (Options.InsecureSkipJWTVerify skips verification): %w", err)
	}
	return identity.VerifyAgentIdentityJWT(token, keys, time.Now())
}
