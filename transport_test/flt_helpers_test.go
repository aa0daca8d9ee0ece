package transport_test

// Helpers of the fault, soak, hostile-input and secrets tests. Every
// package-level name starts with "flt" so that they cannot collide with the
// helpers of the other test files in this package.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// fltWait bounds every wait of these tests, so that a bug fails the test
// instead of hanging it.
const fltWait = 10 * time.Second

// fltBackoff is the first backoff of a failed thread registration in these
// tests: BackoffInitial with jitter switched off, so it is exact.
const fltBackoff = time.Second

// fltTimeout is the registration timeout of the "server slower than the
// client" cases (thread cache Timeout and Config.AgentTimeout).
const fltTimeout = 150 * time.Millisecond

// fltConstReader yields the same byte forever: as the KeyRand test hook it makes
// the key of a provisioned identity known to the test (seed = 32 × b), so
// the test can search outputs for it.
type fltConstReader byte

func (r fltConstReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// fltKeySecrets returns the forms of the private key with seed 32 × b that
// must never be printed: the PKCS#8 base64 of auth.json and the raw seed in
// hex.
func fltKeySecrets(t testing.TB, b byte) (*identity.PrivateKey, []string) {
	t.Helper()
	seed := bytes.Repeat([]byte{b}, 32)
	key, err := identity.NewPrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return key, []string{key.MarshalPrivateKey(), hex.EncodeToString(seed)}
}

var fltSeq atomic.Int64

// fltUnique returns a name unique in the test binary: agent provisioning
// and process tasks are shared process-wide per account and runtime.
func fltUnique(prefix string) string { return fmt.Sprintf("%s-flt-%d", prefix, fltSeq.Add(1)) }

// fltAgent makes an Agent Identity with seed 32 × b known to srv and returns
// it with its secret forms.
func fltAgent(t testing.TB, srv *identitytest.Server, b byte) (identity.Record, []string) {
	t.Helper()
	key, secrets := fltKeySecrets(t, b)
	rec := identity.Record{
		AgentRuntimeID:  fltUnique("rt"),
		AgentPrivateKey: key.MarshalPrivateKey(),
		AccountID:       fltUnique("acct"),
		ChatGPTUserID:   "user-flt",
		PlanType:        "plus",
	}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	return rec, secrets
}

// fltRecorder is the base transport of these tests: it forwards to a real
// http.Transport and keeps every credential that went over the wire (each
// Authorization value and each task-registration signature), so a test can
// search errors and logs for them. It also counts what it forwarded.
type fltRecorder struct {
	next http.RoundTripper

	resources, registrations atomic.Int64

	mu      sync.Mutex
	secrets map[string]bool
}

func fltNewRecorder(t testing.TB, next http.RoundTripper) *fltRecorder {
	if next == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		t.Cleanup(tr.CloseIdleConnections)
		next = tr
	}
	return &fltRecorder{next: next, secrets: map[string]bool{}}
}

func (r *fltRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	isReg := strings.Contains(req.URL.Path, "/v1/agent/")
	if isReg {
		r.registrations.Add(1)
	} else {
		r.resources.Add(1)
	}
	if v := req.Header.Get("Authorization"); v != "" {
		r.keep(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			r.keep(cred)
		}
	}
	if !isReg || req.Body == nil || req.Body == http.NoBody {
		return r.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var reg struct {
		Signature string `json:"signature"`
	}
	if json.Unmarshal(body, &reg) == nil && reg.Signature != "" {
		r.keep(reg.Signature)
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	return r.next.RoundTrip(out)
}

func (r *fltRecorder) CloseIdleConnections() {
	if c, ok := r.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (r *fltRecorder) keep(s string) {
	r.mu.Lock()
	r.secrets[s] = true
	r.mu.Unlock()
}

// Secrets returns every credential seen so far.
func (r *fltRecorder) Secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		out = append(out, s)
	}
	return out
}

// fltLog is a goroutine-safe buffer for slog handlers.
type fltLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *fltLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *fltLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// fltLoggers returns a debug logger that writes text records to one buffer
// and JSON records to another.
func fltLoggers() (*slog.Logger, *fltLog, *fltLog) {
	text, js := &fltLog{}, &fltLog{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return slog.New(slog.NewMultiHandler(slog.NewTextHandler(text, opts), slog.NewJSONHandler(js, opts))), text, js
}

// fltErrTexts renders err with every verb a caller might log it with.
func fltErrTexts(err error) []string {
	if err == nil {
		return nil
	}
	return []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%s", err)}
}

// fltNoSecret fails when text contains any of secrets. It never prints a
// secret, only its length and position in the list.
func fltNoSecret(t testing.TB, what, text string, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if len(s) < 8 {
			continue // too short to be a credential; would match by chance
		}
		if strings.Contains(text, s) {
			t.Errorf("%s contains secret #%d (%d bytes)", what, i, len(s))
		}
	}
}

// fltResult is the outcome of one request: the response (body read) or the
// error.
type fltResult struct {
	status int
	header http.Header
	body   []byte
	echo   identitytest.Echo
	err    error
}

// fltDo sends POST url on thread ("" for none) through rt with a replayable
// body and reads the whole answer. It does not fail the test, so workers
// can call it.
func fltDo(ctx context.Context, rt http.RoundTripper, url, thread string) fltResult {
	if thread != "" {
		ctx = transport.WithThread(ctx, thread)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"input":"flt"}`))
	if err != nil {
		return fltResult{err: err}
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return fltResult{err: err}
	}
	defer resp.Body.Close()
	r := fltResult{status: resp.StatusCode, header: resp.Header}
	r.body, r.err = io.ReadAll(resp.Body)
	if r.err == nil && resp.StatusCode == http.StatusOK {
		_ = json.Unmarshal(r.body, &r.echo)
	}
	return r
}

// fltEnv is one reference server on a fake clock and one transport on it,
// with a recording base and debug loggers; torn down when the test ends.
type fltEnv struct {
	t        *testing.T
	srv      *identitytest.Server
	clock    *fakeClock
	rec      *fltRecorder
	text, js *fltLog
	rt       *transport.Transport
	url      string   // the protected resource
	secrets  []string // known before any request; see allSecrets
	runtime  string   // the agent runtime id, when known
	account  string
	errs     []error // every error a request returned, for the secret scan

	cfg    transport.Config // the transport's config, for siblings
	token2 string           // a second accepted access token (ChatGPT envs)
}

// fltEnvOptions selects the credential of an fltEnv.
type fltEnvOptions struct {
	server identitytest.Options
	// chatGPT makes the credential a ChatGPT login with the flag on
	// (provisioned with KeyRand seed 32 × keyByte); otherwise an Agent
	// Identity with seed 32 × keyByte is used.
	chatGPT bool
	keyByte byte
	// shortTimeouts bounds registrations by fltTimeout instead of fltWait,
	// for a server slower than the client.
	shortTimeouts bool
	config        func(*transport.Config)
}

func fltNewEnv(t *testing.T, o fltEnvOptions) *fltEnv {
	t.Helper()
	e := &fltEnv{t: t, clock: newFakeClock(wholeSecondNow())}
	token := fltUnique("at-flt-SECRET-access")
	e.token2 = fltUnique("at-flt-SECRET-sibling")
	o.server.Now = e.clock.Now
	if o.chatGPT {
		o.server.AccessTokens = append(o.server.AccessTokens, token, e.token2)
	}
	srv, err := identitytest.NewServer(o.server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.srv, e.url = srv, srv.URL()+"/v1/responses"
	e.rec = fltNewRecorder(t, nil)
	logger, text, js := fltLoggers()
	e.text, e.js = text, js

	cfg := transport.Config{
		ChatGPTBaseURL:    srv.URL(),
		AuthAPIBaseURL:    srv.URL(),
		AllowInsecureHTTP: true,
		IdentityStore:     credentials.NewMemoryStore(),
		Logger:            logger,
		ThreadCache: resolver.CacheOptions{
			Timeout:        fltWait,
			BackoffInitial: fltBackoff,
			BackoffJitter:  -1,
		},
		AgentTimeout: fltWait,
	}
	*testhooks.Of(&cfg) = testhooks.Hooks{Now: e.clock.Now, Rand: func() float64 { return 0.5 }}
	if o.shortTimeouts {
		cfg.ThreadCache.Timeout, cfg.AgentTimeout = fltTimeout, fltTimeout
	}
	if o.chatGPT {
		e.account = fltUnique("acct")
		cfg.Credentials = &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{
			AccessToken: token, AccountID: e.account,
		}}
		cfg.Flag = featureflag.New(true)
		testhooks.Of(&cfg).KeyRand = fltConstReader(o.keyByte)
		cfg.ProvisioningCooldown = time.Minute
		_, e.secrets = fltKeySecrets(t, o.keyByte)
		e.secrets = append(e.secrets, token)
	} else {
		rec, secrets := fltAgent(t, srv, o.keyByte)
		e.runtime, e.account, e.secrets = rec.AgentRuntimeID, rec.AccountID, secrets
		cfg.Credentials = &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec}
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.cfg = cfg
	e.rt, err = transport.New(e.rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.rt.CloseIdleConnections)
	return e
}

// do sends one request on thread and keeps its error for the secret scan.
func (e *fltEnv) do(thread string) fltResult {
	ctx, cancel := context.WithTimeout(context.Background(), fltWait)
	defer cancel()
	r := fltDo(ctx, e.rt, e.url, thread)
	if r.err != nil {
		e.errs = append(e.errs, r.err)
	}
	return r
}

// mustAssertion fails unless r is a 200 that the server verified as an
// AgentAssertion on a task of thread ("" = the process task) and, when
// known, of the env's runtime.
func (e *fltEnv) mustAssertion(r fltResult, thread string) {
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
func (e *fltEnv) mustBearer(r fltResult) {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("request: %v", r.err)
	}
	if r.status != http.StatusOK || r.echo.Mode != identitytest.ModeBearer || r.echo.AccountID != e.account {
		e.t.Fatalf("request: status %d echo %+v, want Bearer", r.status, r.echo)
	}
}

// allSecrets returns the env's keys and tokens plus every credential that
// went over the wire or that the server recorded.
func (e *fltEnv) allSecrets() []string {
	out := append([]string(nil), e.secrets...)
	out = append(out, e.rec.Secrets()...)
	for _, seen := range e.srv.Requests() {
		if v := seen.Header.Get("Authorization"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// checkNoSecrets scans every error the env's requests returned and both
// log buffers.
func (e *fltEnv) checkNoSecrets() {
	e.t.Helper()
	secrets := e.allSecrets()
	for i, err := range e.errs {
		for _, s := range fltErrTexts(err) {
			fltNoSecret(e.t, fmt.Sprintf("error %d", i), s, secrets)
		}
	}
	fltNoSecret(e.t, "text log", e.text.String(), secrets)
	fltNoSecret(e.t, "JSON log", e.js.String(), secrets)
}

// sibling returns a second transport on the env's server for another
// ChatGPT login (flag on, its own store and key seed 32 × keyByte), whose
// secrets join the env's.
func (e *fltEnv) sibling(keyByte byte) (*transport.Transport, string) {
	e.t.Helper()
	cfg := e.cfg
	account := fltUnique("acct-sibling")
	cfg.Credentials = &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{
		AccessToken: e.token2, AccountID: account,
	}}
	cfg.Flag = featureflag.New(true)
	cfg.IdentityStore = credentials.NewMemoryStore()
	testhooks.Of(&cfg).KeyRand = fltConstReader(keyByte)
	rt, err := transport.New(e.rec, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	_, secrets := fltKeySecrets(e.t, keyByte)
	e.secrets = append(append(e.secrets, secrets...), e.token2)
	return rt, account
}
