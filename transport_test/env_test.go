package transport_test

// The one test environment of this package: a reference server on a fake
// clock, optionally behind a frontServer, and a transport on it over a base
// that records every credential it sends, with debug loggers whose output
// the secret scans search.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
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

// shortWait bounds the waits of the env tests on a channel or a request,
// so that a bug fails the test instead of hanging it.
const shortWait = 10 * time.Second

// firstBackoff is the first backoff of a failed thread registration in an
// env: BackoffInitial with jitter switched off, so it is exact.
const firstBackoff = time.Second

// slowTimeout is the registration timeout of the "server slower than the
// client" cases (envOptions.shortTimeouts).
const slowTimeout = 150 * time.Millisecond

// halfRand pins the transport's random source.
func halfRand() float64 { return 0.5 }

// env is one reference server on a fake clock and one transport on it, torn
// down when the test ends.
type env struct {
	t      *testing.T
	srv    *identitytest.Server
	front  *frontServer // nil unless envOptions.front
	base   string       // where resources and registrations are sent
	url    string       // the protected resource, base + "/v1/responses"
	clock  *fakeClock
	wire   *wireRecorder
	text   *syncLog // the transport's debug log as text
	js     *syncLog // ... and as JSON
	rt     *transport.Transport
	client *http.Client
	cfg    transport.Config // the transport's config, for siblings

	agent   identity.Record // the Agent Identity; zero for ChatGPT envs
	runtime string          // the agent runtime id, when known
	account string
	secrets []string // known before any request; see allSecrets
	errs    []error  // every error e.do returned, for the secret scan
	token2  string   // a second accepted access token (ChatGPT envs)
}

// envOptions selects the server, the credential and the config of an env.
type envOptions struct {
	server identitytest.Options
	// front routes everything through a frontServer.
	front bool
	// chatGPT makes the credential a ChatGPT login with the flag on
	// (provisioned with KeyRand seed 32 × keyByte); otherwise an Agent
	// Identity is used, with seed 32 × keyByte when keyByte is not 0 and
	// a random key when it is.
	chatGPT bool
	keyByte byte
	// shortTimeouts bounds registrations by slowTimeout instead of
	// shortWait, for a server slower than the client.
	shortTimeouts bool
	config        func(*transport.Config)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, clock: newFakeClock(wholeSecondNow())}
	token := unique("at-SECRET-access")
	e.token2 = unique("at-SECRET-sibling")
	o.server.Now = e.clock.Now
	if o.chatGPT {
		o.server.AccessTokens = append(o.server.AccessTokens, token, e.token2)
	}
	e.srv = newIdentityServer(t, o.server)
	e.base = e.srv.URL()
	if o.front {
		e.front = newFrontServer(t, e.srv)
		e.base = e.front.URL()
	}
	e.url = e.base + "/v1/responses"
	e.wire = newWireRecorder(t, nil)
	logger, text, js := debugLoggers()
	e.text, e.js = text, js

	cfg := transport.Config{
		ChatGPTBaseURL:    e.base,
		AuthAPIBaseURL:    e.base,
		AllowInsecureHTTP: true,
		IdentityStore:     credentials.NewMemoryStore(),
		Logger:            logger,
		ThreadCache: taskcache.CacheOptions{
			Timeout:        shortWait,
			BackoffInitial: firstBackoff,
			BackoffJitter:  -1,
		},
		AgentTimeout: shortWait,
	}
	*testhooks.Of(&cfg) = testhooks.Hooks{Now: e.clock.Now, Rand: halfRand}
	if o.shortTimeouts {
		cfg.ThreadCache.Timeout, cfg.AgentTimeout = slowTimeout, slowTimeout
	}
	if o.chatGPT {
		e.account = unique("acct")
		cfg.Credentials = chatGPTCreds(token, e.account, false)
		cfg.Flag = featureflag.New(true)
		testhooks.Of(&cfg).KeyRand = constReader(o.keyByte)
		cfg.ProvisioningCooldown = time.Minute
		_, e.secrets = keySecrets(t, o.keyByte)
		e.secrets = append(e.secrets, token)
	} else {
		if o.keyByte != 0 {
			e.agent, e.secrets = seededAgent(t, e.srv, o.keyByte)
		} else {
			e.agent = newRuntime(t, e.srv, unique("acct"), false)
			e.secrets = []string{e.agent.AgentPrivateKey.Reveal()}
		}
		e.runtime, e.account = e.agent.AgentRuntimeID, e.agent.AccountID
		cfg.Credentials = agentCreds(e.agent)
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.cfg = cfg
	e.rt = newTransport(t, e.wire, cfg)
	t.Cleanup(e.rt.CloseIdleConnections)
	e.client = &http.Client{Transport: e.rt}
	return e
}

// result is the outcome of one request: the response (body read, echo
// decoded when it is a 200) or the error.
type result struct {
	status int
	header http.Header
	body   []byte
	echo   identitytest.Echo
	// echoErr is why a 200's body is not an echo (a fault test's answer
	// may be anything).
	echoErr error
	err     error
}

// send sends req with rt and reads the whole answer. It does not fail the
// test, so workers can call it.
func send(rt http.RoundTripper, req *http.Request) result {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header}
	r.body, r.err = io.ReadAll(resp.Body)
	if r.err == nil && resp.StatusCode == http.StatusOK {
		r.echoErr = json.Unmarshal(r.body, &r.echo)
	}
	return r
}

// post sends POST url on thread ("" for none) through rt with a replayable
// body.
func post(ctx context.Context, rt http.RoundTripper, url, thread string) result {
	req, err := http.NewRequestWithContext(threadCtx(ctx, thread), http.MethodPost, url, strings.NewReader(`{}`))
	if err != nil {
		return result{err: err}
	}
	return send(rt, req)
}

// do posts one request on thread and keeps its error for the secret scan.
// Unlike request, it is for the test goroutine only.
func (e *env) do(thread string) result {
	ctx, cancel := context.WithTimeout(context.Background(), shortWait)
	defer cancel()
	r := post(ctx, e.rt, e.url, thread)
	if r.err != nil {
		e.errs = append(e.errs, r.err)
	}
	return r
}

// request sends a request for path with ctx through the transport; any
// goroutine may call it. A *bytes.Reader body is replayable
// (http.NewRequest sets GetBody).
func (e *env) request(ctx context.Context, method, path string, body io.Reader) result {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, body)
	if err != nil {
		return result{err: err}
	}
	return send(e.rt, req)
}

// get sends GET /v1/responses on thread key (none when key is "").
func (e *env) get(key string) result {
	return e.request(threadCtx(context.Background(), key), http.MethodGet, "/v1/responses", nil)
}

// mustAssertion fails unless r is a 200 that the server verified as an
// AgentAssertion on a task of thread ("" = the process task) and, when
// known, of the env's runtime.
func (e *env) mustAssertion(r result, thread string) {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("request on %q: %v", thread, r.err)
	}
	if r.status != http.StatusOK || r.echo.Mode != identitytest.ModeAssertion || r.echo.ExternalTaskRef != thread ||
		(e.runtime != "" && r.echo.AgentRuntimeID != e.runtime) || r.echo.AccountID != e.account {
		e.t.Fatalf("request on %q: status %d echo %+v", thread, r.status, r.echo)
	}
}

// mustBearer fails unless r is a 200 that the server verified as Bearer.
func (e *env) mustBearer(r result) {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("request: %v", r.err)
	}
	if r.status != http.StatusOK || r.echo.Mode != identitytest.ModeBearer || r.echo.AccountID != e.account {
		e.t.Fatalf("request: status %d echo %+v, want Bearer", r.status, r.echo)
	}
}

// tasks returns the tasks the server registered for ref on this env's
// runtime, oldest first.
func (e *env) tasks(ref string) []identitytest.Task {
	var out []identitytest.Task
	for _, task := range e.srv.Tasks() {
		if task.RuntimeID == e.runtime && task.ExternalTaskRef == ref {
			out = append(out, task)
		}
	}
	return out
}

// allSecrets returns the env's keys and tokens plus every credential that
// went over the wire or that the server recorded.
func (e *env) allSecrets() []string {
	out := append([]string(nil), e.secrets...)
	out = append(out, e.wire.Secrets()...)
	for _, seen := range e.srv.Requests() {
		if v := seen.Header.Get("Authorization"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// checkNoSecrets scans every error the env's requests returned and both
// log buffers.
func (e *env) checkNoSecrets() {
	e.t.Helper()
	secrets := e.allSecrets()
	for i, err := range e.errs {
		for _, s := range errTexts(err) {
			checkNoSecret(e.t, fmt.Sprintf("error %d", i), s, secrets)
		}
	}
	checkNoSecret(e.t, "text log", e.text.String(), secrets)
	checkNoSecret(e.t, "JSON log", e.js.String(), secrets)
}

// sibling returns a second transport on the env's server for another
// ChatGPT login (flag on, its own store and key seed 32 × keyByte), whose
// secrets join the env's.
func (e *env) sibling(keyByte byte) (*transport.Transport, string) {
	e.t.Helper()
	cfg := e.cfg
	account := unique("acct-sibling")
	cfg.Credentials = chatGPTCreds(e.token2, account, false)
	cfg.Flag = featureflag.New(true)
	cfg.IdentityStore = credentials.NewMemoryStore()
	testhooks.Of(&cfg).KeyRand = constReader(keyByte)
	rt := newTransport(e.t, e.wire, cfg)
	_, secrets := keySecrets(e.t, keyByte)
	e.secrets = append(append(e.secrets, secrets...), e.token2)
	return rt, account
}
