package transport_test

// The one environment builder of this package, and the one place that maps
// a test's wishes onto transport.Options: a reference server (on a fake
// clock unless the env is plain), optionally behind a frontServer, and a
// transport on it over a base that records every credential it sends,
// with debug loggers whose output the secret scans search. Every test that
// builds a transport builds it with newEnv.

import (
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// firstBackoff is the first backoff of a failed thread registration in an
// env: BackoffInitial with jitter switched off, so it is exact.
const firstBackoff = time.Second

// slowTimeout is the registration timeout of the "server slower than the
// client" cases (envOptions.shortTimeouts).
const slowTimeout = 150 * time.Millisecond

// env is one reference server and one transport on it, torn down when the
// test ends.
type env struct {
	t      *testing.T
	srv    *identitytest.Server
	front  *frontServer // nil unless envOptions.front
	base   string       // where resources and registrations are sent
	url    string       // the protected resource, base + "/v1/responses"
	clock  *fakeClock
	wire   *wireRecorder // nil when envOptions.base replaced it
	text   *syncLog      // the transport's debug log as text
	js     *syncLog      // ... and as JSON
	rt     *transport.Transport
	client *http.Client
	opts   transport.Options // the transport's options, for siblings
	rtBase http.RoundTripper // the base the transport sends through

	agent   identity.Record // the Agent Identity; zero for other credentials
	runtime string          // the agent runtime id, when known
	account string
	secrets []string // known before any request; see allSecrets
	errs    []error  // every error e.do returned, for the secret scan
	token2  string   // a second accepted access token (ChatGPT envs)
}

// envOptions selects the server, the base, the credential and the options
// of an env. The zero value is an Agent Identity with a random key, known
// to a new reference server on a fake clock, over a wireRecorder.
type envOptions struct {
	// server configures the env's own reference server.
	server identitytest.Options
	// srv shares an existing server instead (server is then ignored, and
	// the server keeps its own clock).
	srv *identitytest.Server
	// front routes everything through a frontServer.
	front bool
	// baseURL replaces the URL the transport's BaseURL points at (the
	// server, or its front); production leaves BaseURL empty, so the
	// transport talks to the production origins (the base must be a stub),
	// and starts no server unless srv is set (the credential must then
	// be given).
	baseURL    string
	production bool
	// chatGPTURL and authAPIURL put one of the two services elsewhere,
	// the other staying at the server (plain http allowed).
	chatGPTURL, authAPIURL string
	// base is the base transport; default a wireRecorder over a real
	// http.Transport.
	base http.RoundTripper
	// plain builds the transport as a caller would: the real clock and
	// randomness, default registration backoff and timeouts, no logger.
	plain bool

	// codexHome is the Codex home (default an empty temporary directory,
	// never ~/.codex); getenv is Options.Getenv (default the process's).
	codexHome string
	getenv    func(string) string
	// viaNewClient builds with transport.NewClient, over
	// http.DefaultTransport (base must be nil).
	viaNewClient bool
	// The credential, in this order: credential as given; detect, what
	// New detects in the Codex home; noCredential (an empty Codex home
	// with AllowNoCredential: pass through); agent;
	// chatGPT, a ChatGPT access token the env's own server accepts, with
	// the flag on (provisioned with KeyRand seed 32 × keyByte unless plain); otherwise
	// a fresh Agent Identity, with seed 32 × keyByte when keyByte is not 0
	// and a random key when it is.
	credential   transport.Credential
	detect       bool
	noCredential bool
	agent        *identity.Record
	chatGPT      bool
	keyByte      byte

	// flag is the use_agent_identity switch; default on for chatGPT and
	// off otherwise, never read from the environment or the Codex home
	// unless flagFromHome leaves Options.AgentIdentity nil.
	flag         transport.Flag
	flagFromHome bool
	// fleet is Options.Fleet; its IdentityStore defaults to a fresh memory
	// store unless defaultStore leaves it nil: New's default, auth.json for
	// a login read from it, else the process-wide store.
	fleet        transport.Fleet
	defaultStore bool
	// clock is the env's fake clock (default one started on a whole
	// second); unless plain it is the transport's clock too.
	clock *fakeClock
	// shortTimeouts bounds registrations by slowTimeout instead of
	// shortWait, for a server slower than the client.
	shortTimeouts bool
	// options, when set, edits the options last: Tuning, Observer, test
	// hooks and the rest.
	options func(*transport.Options)
}

// newEnv builds the env o describes and fails the test if New refuses it.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e, err := tryEnv(t, o)
	if err != nil {
		t.Fatalf("transport.New: %v", err)
	}
	return e
}

// tryEnv is newEnv returning New's error, for tests of what New refuses.
func tryEnv(t *testing.T, o envOptions) (*env, error) {
	t.Helper()
	e := &env{t: t, clock: o.clock}
	if e.clock == nil {
		e.clock = newFakeClock(wholeSecondNow())
	}
	token := unique("at-SECRET-access")
	e.token2 = unique("at-SECRET-sibling")
	switch e.srv = o.srv; {
	case e.srv != nil:
	case o.production:
		// No server at all: the transport talks to the production
		// origins through a stub base, and a test that checks for
		// leaked goroutines sees none of a server's.
	default:
		o.server.Now = e.clock.Now
		if o.chatGPT {
			o.server.AccessTokens = append(o.server.AccessTokens, token, e.token2)
		}
		e.srv = newIdentityServer(t, o.server)
	}
	if e.srv != nil {
		e.base = e.srv.URL()
	}
	if o.front {
		e.front = newFrontServer(t, e.srv)
		e.base = e.front.URL()
	}
	if o.baseURL != "" {
		e.base = o.baseURL
	}
	e.url = e.base + "/v1/responses"
	if e.rtBase = o.base; e.rtBase == nil {
		e.wire = newWireRecorder(t, nil)
		e.rtBase = e.wire
	}

	opts := transport.Options{
		BaseURL:   e.base,
		CodexHome: o.codexHome,
		Getenv:    o.getenv,
		Fleet:     o.fleet,
	}
	if opts.CodexHome == "" {
		opts.CodexHome = t.TempDir() // never the real ~/.codex
	}
	if o.production {
		opts.BaseURL = ""
	}
	if o.chatGPTURL != "" || o.authAPIURL != "" {
		opts.BaseURL = ""
		opts.Tuning = transport.Tuning{ChatGPTBaseURL: e.base, AuthAPIBaseURL: e.base, AllowInsecureHTTP: true}
		if o.chatGPTURL != "" {
			opts.Tuning.ChatGPTBaseURL = o.chatGPTURL
		}
		if o.authAPIURL != "" {
			opts.Tuning.AuthAPIBaseURL = o.authAPIURL
		}
	}
	if opts.Fleet.IdentityStore == nil && !o.defaultStore {
		opts.Fleet.IdentityStore = credentials.NewMemoryStore()
	}
	if !o.plain {
		logger, text, js := debugLoggers()
		e.text, e.js = text, js
		opts.Logger = logger
		opts.Tuning.RegistrationTimeout, opts.Tuning.AgentTimeout = shortWait, shortWait
		if o.shortTimeouts {
			opts.Tuning.RegistrationTimeout, opts.Tuning.AgentTimeout = slowTimeout, slowTimeout
		}
		*testhooks.Of(&opts) = testhooks.Hooks{
			Now:                 e.clock.Now,
			Rand:                halfRand,
			ThreadCacheOverride: &taskcache.CacheOptions{BackoffInitial: firstBackoff, BackoffJitter: -1},
		}
	}
	flagOn := false
	switch {
	case o.credential != (transport.Credential{}):
		opts.Credential = o.credential
	case o.detect:
	case o.noCredential:
		opts.AllowNoCredential = true
	case o.agent != nil:
		e.agent = *o.agent
		e.runtime, e.account = e.agent.AgentRuntimeID, e.agent.AccountID
		e.secrets = []string{e.agent.AgentPrivateKey.Reveal()}
		opts.Credential = agentCred(t, e.agent)
	case o.chatGPT:
		flagOn = true
		e.account = unique("acct")
		opts.Credential = transport.BearerToken(token, e.account, false)
		e.secrets = []string{token}
		if !o.plain {
			testhooks.Of(&opts).KeyRand = constReader(o.keyByte)
			opts.Tuning.ProvisioningCooldown = time.Minute
			_, keys := keySecrets(t, o.keyByte)
			e.secrets = append(keys, token)
		}
	default:
		if o.keyByte != 0 {
			e.agent, e.secrets = seededAgent(t, e.srv, o.keyByte)
		} else {
			e.agent = newRuntime(t, e.srv, unique("acct"), false)
			e.secrets = []string{e.agent.AgentPrivateKey.Reveal()}
		}
		e.runtime, e.account = e.agent.AgentRuntimeID, e.agent.AccountID
		opts.Credential = agentCred(t, e.agent)
	}
	if opts.AgentIdentity = o.flag; o.flag == nil && !o.flagFromHome {
		opts.AgentIdentity = featureflag.New(flagOn)
	}
	if o.options != nil {
		o.options(&opts)
	}
	e.opts = opts
	if o.viaNewClient {
		client, err := transport.NewClient(opts)
		if err != nil {
			return nil, err
		}
		e.client, e.rt = client, client.Transport.(*transport.Transport)
		t.Cleanup(e.rt.Close)
		t.Cleanup(client.CloseIdleConnections)
		return e, nil
	}
	rt, err := e.build(opts)
	if err != nil {
		return nil, err
	}
	e.rt = rt
	e.client = &http.Client{Transport: e.rt}
	return e, nil
}

// build is the package's one call of transport.New (tryEnv makes the one
// of transport.NewClient).
func (e *env) build(opts transport.Options) (*transport.Transport, error) {
	rt, err := transport.New(e.rtBase, opts)
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(rt.Close)
	e.t.Cleanup(rt.CloseIdleConnections)
	return rt, nil
}

// another builds a second transport of the env's server and base from the
// env's options as edit changes them.
func (e *env) another(edit func(*transport.Options)) *transport.Transport {
	e.t.Helper()
	opts := e.opts
	if edit != nil {
		edit(&opts)
	}
	rt, err := e.build(opts)
	if err != nil {
		e.t.Fatalf("transport.New: %v", err)
	}
	return rt
}

// sibling returns a second transport on the env's server for another
// ChatGPT login (flag on, its own store and key seed 32 × keyByte), whose
// secrets join the env's.
func (e *env) sibling(keyByte byte) (*transport.Transport, string) {
	e.t.Helper()
	account := unique("acct-sibling")
	rt := e.another(func(o *transport.Options) {
		o.Credential = transport.BearerToken(e.token2, account, false)
		o.AgentIdentity = featureflag.New(true)
		o.Fleet.IdentityStore = credentials.NewMemoryStore()
		testhooks.Of(o).KeyRand = constReader(keyByte)
	})
	_, secrets := keySecrets(e.t, keyByte)
	e.secrets = append(append(e.secrets, secrets...), e.token2)
	return rt, account
}

// agentCred is the Credential of an in-memory Agent Identity record, in
// the JSON form the Codex CLI writes.
func agentCred(t testing.TB, rec identity.Record) transport.Credential {
	t.Helper()
	js, err := rec.StorageJSON()
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.AgentIdentity(js)
	if err != nil {
		t.Fatalf("transport.AgentIdentity: %v", err)
	}
	return c
}

// newIdentityServer starts the reference server and closes it when the test
// ends.
func newIdentityServer(t testing.TB, opts identitytest.Options) *identitytest.Server {
	t.Helper()
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// newHTTPBase returns a real base transport with enough idle connections per
// host for the concurrent tests, closed when the test ends.
func newHTTPBase(t testing.TB) *http.Transport {
	t.Helper()
	base := &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		MaxConnsPerHost:     128,
		IdleConnTimeout:     30 * time.Second,
	}
	t.Cleanup(base.CloseIdleConnections)
	return base
}

// userLogin is a static ChatGPT login that names its user, as a login read
// from auth.json does: only a login whose account and user are known keeps
// its identity in an IdentityStore.
func userLogin(token, account, userID string) transport.Credential {
	return transport.ChatGPT(credentials.StaticTokenSource(credentials.Token{
		AccessToken: identity.Secret(token), AccountID: account, UserID: userID,
	}))
}
