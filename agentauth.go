// Package agentauth builds, in one call, an HTTP transport that
// authenticates requests to the ChatGPT/Codex backend the way the Codex CLI
// does, from a Codex home directory: the credential of auth.json and the
// environment (an Agent Identity JWT verified against the JWKS), the
// use_agent_identity flag (environment and config.toml), a ChatGPT login
// that refreshes itself and shares auth.json with a Codex CLI running
// beside it, and auth.json as the store of an agent identity provisioned
// from that login.
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

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/internal/testhooks"
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

	// HTTPClient sends the JWKS fetch and ChatGPT token refreshes.
	// Default: a client on the base transport given to NewTransport (or
	// http.DefaultTransport).
	HTTPClient *http.Client

	// AllowNoCredential makes a Codex home without any credential build a
	// transport that passes requests through unchanged. Default: false,
	// that is an error wrapping [ErrNoCredential].
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
	// from).
	Credentials *credentials.Credentials
	// Flag is the use_agent_identity switch; it can be flipped at run time.
	Flag *featureflag.Flag
	// TokenSource is, for a ChatGPT login, the refreshing source over
	// auth.json (a [credentials.RefreshingTokenSource]), or, for tokens an
	// outside host refreshes (auth_mode chatgptAuthTokens), a source that
	// re-reads auth.json; nil for other credentials.
	TokenSource credentials.TokenSource
	// IdentityStore is auth.json (a [credentials.FileStore]) for a ChatGPT
	// login, so a provisioned agent identity is shared with the Codex CLI;
	// nil otherwise.
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
	if h := testhooks.Of(&cfg); h.Getenv == nil {
		h.Getenv = getenv
	}
	s := &Setup{CodexHome: home}

	creds := cfg.Credentials
	if creds == nil {
		var err error
		creds, err = credentials.Load(credentials.LoadOptions{
			CodexHome: home,
			Getenv:    getenv,
			DecodeAgentIdentityJWT: func(token string) (*identity.Record, error) {
				return decodeJWT(ctx, opts, getenv, client, cfg.ChatGPTBaseURL, token)
			},
		})
		if err != nil {
			return nil, err
		}
	}
	if creds.Kind == credentials.KindNone && cfg.TokenSource == nil && !opts.AllowNoCredential {
		return nil, fmt.Errorf("%w (looked in %s and the environment)", ErrNoCredential, filepath.Join(home, credentials.AuthFileName))
	}
	s.Credentials = creds

	flag := cfg.Flag
	if flag == nil {
		var err error
		if flag, err = featureflag.Load(featureflag.Options{CodexHome: home, Getenv: getenv, Value: opts.UseAgentIdentity}); err != nil {
			return nil, err
		}
	}
	s.Flag = flag

	src, store := cfg.TokenSource, cfg.IdentityStore
	if creds.Kind == credentials.KindChatGPT && creds.Source == filepath.Join(home, credentials.AuthFileName) {
		path := filepath.Join(home, credentials.AuthFileName)
		if src == nil {
			if creds.ChatGPT.ExternallyManaged {
				src = credentials.NewFileTokenSource(path)
			} else {
				rs, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
					Coordinator: credentials.NewAuthFileCoordinator(home),
					HTTPClient:  client,
					Getenv:      getenv,
					Logger:      cfg.Logger,
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

// Transport builds the transport over base (nil means
// http.DefaultTransport).
func (s *Setup) Transport(base http.RoundTripper) (*transport.Transport, error) {
	return transport.New(base, s.config)
}

// Close stops a background token refresh in flight (a refresh ends by
// itself within its timeout otherwise) and releases the refresher's idle
// connections. The transport keeps working with the current token.
func (s *Setup) Close() {
	if c, ok := s.TokenSource.(interface{ Close() }); ok {
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
//     CLI) and auth.json as the store of an agent identity provisioned
//     from it when the flag is on;
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
	keys, err := (&identity.Client{HTTPClient: client}).FetchJWKS(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("agentauth: cannot verify the agent identity JWT (Options.InsecureSkipJWTVerify skips verification): %w", err)
	}
	return identity.VerifyAgentIdentityJWT(token, keys, time.Now())
}
