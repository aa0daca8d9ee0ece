package transport

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
	"github.com/agentauth/agentauth/internal/useragent"
)

// defaultJWKSTimeout bounds the JWKS fetch that verifies an Agent Identity JWT.
const defaultJWKSTimeout = 10 * time.Second

// New returns a Transport that sends requests through base (nil means
// http.DefaultTransport), authenticated with opts.Credential, or with
// what [Detect] finds when it is the zero Credential. Contradictory or
// unusable settings are rejected here, not on the first request. With the
// flag off and a ChatGPT login, an API key or no credential, nothing is
// registered.
func New(base http.RoundTripper, opts Options) (*Transport, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	env, err := opts.environment(base)
	if err != nil {
		return nil, err
	}
	cred := opts.Credential
	if cred.c == nil {
		if cred, err = detect(context.Background(), opts, env); err != nil {
			return nil, err
		}
	}
	cfg, err := opts.config(context.Background(), env, cred.c)
	if err != nil {
		return nil, err
	}
	t, err := newTransport(base, cfg)
	if err != nil {
		return nil, err
	}
	if !cred.c.acquire() {
		return nil, fmt.Errorf("%w: the Credential's transports were all closed, so it no longer refreshes; Detect it again", ErrInvalidOptions)
	}
	t.cred = cred.c
	return t, nil
}

// NewClient is [New] over http.DefaultTransport, in an http.Client.
func NewClient(opts Options) (*http.Client, error) {
	t, err := New(nil, opts)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// Detect finds the credential of the Codex home as the Codex CLI does,
// for callers that inspect it before [New]: in order, workload identity
// federation (OPENAI_IDENTITY_TOKEN_FILE, OPENAI_FEDERATION_RULE_ID), env
// CODEX_API_KEY, CODEX_ACCESS_TOKEN, CODEX_AGENT_IDENTITY, auth.json, env
// OPENAI_API_KEY. A ChatGPT login from auth.json refreshes itself (ahead of
// expiry, one process at a time, or fleet-wide with
// Fleet.RefreshCoordinator) and keeps its agent identity in auth.json; a
// personal access token is looked up once for its account. Nothing found
// is [ErrNoCredential]; a Bedrock or host-provided login is
// [ErrNotChatGPTLogin]; both pass through with Options.AllowNoCredential.
func Detect(ctx context.Context, opts Options) (Credential, error) {
	base := http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	env, err := opts.environment(base)
	if err != nil {
		return Credential{}, err
	}
	return detect(ctx, opts, env)
}

// detect reads the Codex home and the environment, and marks what it found
// as detected.
func detect(ctx context.Context, opts Options, env *environment) (Credential, error) {
	c, err := detectCredential(ctx, opts, env)
	if c.c != nil {
		c.c.detected = true
		c.c.home, _ = opts.codexHome(env.getenv)
	}
	return c, err
}

// environment is what Options say about the world, with defaults applied:
// the environment (pointed at Options.BaseURL when set), the auth-call
// client, and the base URLs and origin rules of the transport.
type environment struct {
	getenv func(string) string
	client *http.Client // auth calls; never follows a redirect
	cfg    config       // bases, origins and tuning, before the credential
}

func (o *Options) environment(base http.RoundTripper) (*environment, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := o.tuningConfig()
	if o.BaseURL != "" {
		var err error
		if getenv, err = pointAtBaseURL(o.BaseURL, &cfg, getenv); err != nil {
			return nil, err
		}
	}
	if cfg.hooks.Getenv == nil {
		cfg.hooks.Getenv = getenv
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Transport: sharedBase{base}}
	}
	// A redirect could carry a refresh or access token to another origin,
	// or fetch the keys from a URL the https-only rule never saw.
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.RegistrationClient = &noRedirects
	return &environment{getenv: getenv, client: &noRedirects, cfg: cfg}, nil
}

// tuningConfig maps Options and Tuning onto the engine's configuration.
func (o *Options) tuningConfig() config {
	tu := o.Tuning
	cfg := config{
		ChatGPTBaseURL:       tu.ChatGPTBaseURL,
		AuthAPIBaseURL:       tu.AuthAPIBaseURL,
		AllowedOrigins:       tu.AllowedOrigins,
		ExtraOrigins:         tu.ExtraOrigins,
		AllowInsecureHTTP:    tu.AllowInsecureHTTP,
		MaxAssertionAge:      tu.MaxAssertionAge,
		ProvisioningCooldown: tu.ProvisioningCooldown,
		AgentTimeout:         tu.AgentTimeout,
		Originator:           tu.Originator,
		Observer:             o.Observer,
		Logger:               o.Logger,
		TaskStore:            o.Fleet.TaskStore,
		IdentityStore:        o.Fleet.IdentityStore,
		Flag:                 o.AgentIdentity,
		hooks:                o.hooks,
	}
	if h := o.hooks.ThreadCacheOverride; h != nil {
		cfg.ThreadCache = *h
	}
	if tu.MaxThreads != 0 {
		cfg.ThreadCache.Capacity = tu.MaxThreads
	}
	if tu.ThreadIdleTTL != 0 {
		cfg.ThreadCache.IdleTTL = tu.ThreadIdleTTL
	}
	if tu.RegistrationTimeout != 0 {
		cfg.ThreadCache.Timeout = tu.RegistrationTimeout
	}
	cfg.Software = o.hooks.AgentSoftware
	return cfg
}

// config completes the engine's configuration with the credential and the
// flag.
func (o *Options) config(ctx context.Context, env *environment, c *credential) (config, error) {
	cfg := env.cfg
	if c.err != nil {
		return config{}, c.err
	}
	creds := c.creds
	if c.jwt != "" {
		rec, err := o.decodeJWT(ctx, env, c.jwt.Reveal())
		if err != nil {
			return config{}, err
		}
		creds = &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: rec, AgentIdentityJWT: c.jwt.Reveal(), Source: creds.Source}
	}
	cfg.Credentials, cfg.TokenSource = creds, c.src
	if cfg.IdentityStore == nil {
		cfg.IdentityStore = c.store
	}
	if cfg.Flag == nil {
		home := c.home // a detected login's switch is in its own home
		if o.CodexHome != "" || home == "" {
			var err error
			if home, err = o.codexHome(env.getenv); err != nil {
				return config{}, err
			}
		}
		flag, err := featureflag.Load(home, env.getenv)
		if err != nil {
			return config{}, err
		}
		cfg.Flag = flag
	}
	return cfg, nil
}

func (o *Options) codexHome(getenv func(string) string) (string, error) {
	if o.CodexHome != "" {
		return o.CodexHome, nil
	}
	return credentials.DefaultCodexHome(getenv)
}

// detectCredential finds the credential in Codex's order.
func detectCredential(ctx context.Context, opts Options, env *environment) (Credential, error) {
	home, err := opts.codexHome(env.getenv)
	if err != nil {
		return Credential{}, err
	}
	authFile := filepath.Join(home, credentials.AuthFileName)
	creds, src, err := workloadIdentity(env.getenv, env.client)
	if err != nil {
		return Credential{}, err
	}
	if creds != nil {
		return Credential{&credential{creds: creds, src: src}}, nil
	}
	creds, err = credentials.Load(credentials.LoadOptions{
		CodexHome: home,
		Getenv:    env.getenv,
		DecodeAgentIdentityJWT: func(token string) (*identity.Record, error) {
			return opts.decodeJWT(ctx, env, token)
		},
	})
	if errors.Is(err, credentials.ErrNotChatGPTLogin) && opts.AllowNoCredential {
		// A Bedrock or host-provided login: nothing of it is sent to the
		// ChatGPT backend, so requests pass through.
		creds, err = &credentials.Credentials{Kind: credentials.KindNone}, nil
	}
	if err != nil {
		return Credential{}, err
	}
	if creds.Kind == credentials.KindNone && !opts.AllowNoCredential {
		return Credential{}, fmt.Errorf("%w (looked in %s and the environment)", ErrNoCredential, authFile)
	}
	if creds.Kind == credentials.KindAPIKey && creds.PersonalAccessToken {
		creds, err = hydratePersonalAccessToken(ctx, env.cfg, env.client, creds)
		return Credential{&credential{creds: creds}}, err
	}
	c := &credential{creds: creds}
	if creds.Kind != credentials.KindChatGPT || creds.Source != authFile {
		return Credential{c}, nil
	}
	c.store = credentials.NewFileStore(authFile)
	if creds.ChatGPT.ExternallyManaged {
		c.src = credentials.NewFileTokenSource(authFile)
		return Credential{c}, nil
	}
	if c.coord, err = refreshCoordinator(opts, home, creds.ChatGPT); err != nil {
		return Credential{}, err
	}
	rs, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
		Coordinator: c.coord,
		HTTPClient:  env.client,
		Getenv:      env.getenv,
		Logger:      opts.Logger,
		Now:         opts.hooks.Now, // the transport's clock (nil: time.Now)
	})
	if err != nil {
		return Credential{}, err
	}
	c.src = rs
	return Credential{c}, nil
}

// refreshCoordinator returns the coordinator of a ChatGPT login loaded
// from auth.json: Fleet.RefreshCoordinator's, else auth.json's.
func refreshCoordinator(opts Options, home string, login *credentials.ChatGPTLogin) (credentials.RefreshCoordinator, error) {
	build := opts.Fleet.RefreshCoordinator
	if build == nil {
		return credentials.NewAuthFileCoordinator(home), nil
	}
	initial := &credentials.TokenSet{IDToken: login.IDToken, AccessToken: login.AccessToken,
		RefreshToken: login.RefreshToken, AccountID: login.AccountID, LastRefresh: login.LastRefresh}
	coord, err := build(credentials.Login{AccountID: login.AccountID, UserID: login.UserID}, initial)
	if err != nil {
		return nil, fmt.Errorf("transport: Fleet.RefreshCoordinator: %w", err)
	}
	if coord == nil {
		return nil, errors.New("transport: Fleet.RefreshCoordinator returned no coordinator")
	}
	return coord, nil
}

// decodeJWT verifies an Agent Identity JWT against the JWKS, or decodes it
// unverified when asked to.
func (o *Options) decodeJWT(ctx context.Context, env *environment, token string) (*identity.Record, error) {
	if o.Tuning.InsecureSkipJWTVerify {
		return identity.DecodeAgentIdentityJWTUnverified(token)
	}
	url := identity.JWKSURL(identity.ResolveBaseURLs(env.getenv, env.cfg.ChatGPTBaseURL).JWKS)
	if !strings.HasPrefix(url, "https://") && !identity.IsLoopbackBase(url) {
		return nil, errors.New("transport: the JWKS base is plain http on a non-loopback host; refusing to trust keys fetched from it")
	}
	ctx, cancel := context.WithTimeout(ctx, defaultJWKSTimeout)
	defer cancel()
	jwks := &identity.Client{HTTPClient: env.client, Originator: useragent.Originator(o.Tuning.Originator, env.getenv)}
	keys, err := jwks.FetchJWKS(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("transport: cannot verify the agent identity JWT (Tuning.InsecureSkipJWTVerify skips verification): %w", err)
	}
	return identity.VerifyAgentIdentityJWT(token, keys, time.Now())
}

// Close ends the transport's share of its credential's background work.
// For a login Detect read (by New itself, or passed in), the token refresh
// in flight and a fleet coordinator's pending publish stop once every
// transport built with that Credential is closed; later refreshes then
// fail and the transport keeps the current token. A Credential from a
// constructor is the caller's: Close leaves its token source alone. Close
// is for the end of a program or a test; calling it again does nothing.
func (t *Transport) Close() {
	c := t.cred
	if c == nil || !t.closed.CompareAndSwap(false, true) || !c.release() {
		return
	}
	if cl, ok := c.src.(interface{ Close() }); ok {
		cl.Close()
	}
	if cl, ok := c.coord.(interface{ Close() }); ok {
		cl.Close()
	}
}

// sharedBase is New's base as the default auth-call client sends through
// it. Its CloseIdleConnections does nothing: Transport.CloseIdleConnections
// reaches the base itself, once, as it did before the client existed.
type sharedBase struct{ http.RoundTripper }

func (sharedBase) CloseIdleConnections() {}
