package workload

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// ResourceURL is the first-party endpoint every in-process request targets.
// It is in the transport's default allow-list, so no origin option is set.
const ResourceURL = "https://chatgpt.com/backend-api/codex/responses"

// AccountID is the account of every benchmark credential; it is sent as
// the ChatGPT-Account-ID routing header.
const AccountID = "acct-bench-0001"

// ThreadKey is the thread key of the thread-assertion case.
const ThreadKey = "thread-bench-0001"

// OrdinaryHeaders are the eight request headers every request carries
// before authentication, as a model-provider client would send them.
var OrdinaryHeaders = [8][2]string{
	{"Accept", "application/json"},
	{"Content-Type", "application/json"},
	{"User-Agent", "agentauth-bench/1.0 (linux; amd64)"},
	{"Accept-Language", "en-US"},
	{"Openai-Beta", "responses=experimental"},
	{"Originator", "codex_cli_rs"},
	{"X-Request-Id", "7f9c2ba4-e88f-4b2a-9d6e-1c3b5a7d9e0f"},
	{"Version", "0.1.0"},
}

// NewRequest returns a POST to url without a body, carrying the
// [OrdinaryHeaders], on ctx. The transports under test never modify it, so
// one request may be sent any number of times.
func NewRequest(ctx context.Context, url string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		panic(err) // url is a constant or a loopback server's URL
	}
	for _, h := range OrdinaryHeaders {
		req.Header.Set(h[0], h[1])
	}
	return req
}

// HandlerContext returns a context shaped like the one net/http gives a
// handler (two values and two cancellation layers), so that context
// lookups in the benchmarks walk a realistic chain rather than
// context.Background. cancel releases it.
func HandlerContext() (ctx context.Context, cancel func()) {
	ctx = context.WithValue(context.Background(), http.ServerContextKey, (*http.Server)(nil))
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nil)
	ctx, connCancel := context.WithCancel(ctx)
	ctx, reqCancel := context.WithCancel(ctx)
	return ctx, func() { reqCancel(); connCancel() }
}

// NopBase is a base RoundTripper that does no I/O: it returns one prebuilt
// 200 response (body http.NoBody) for every request. Callers must treat the
// response as read-only, which every transport under test does.
type NopBase struct{ resp *http.Response }

// NewNopBase returns a [NopBase].
func NewNopBase() *NopBase {
	return &NopBase{resp: &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       http.NoBody,
	}}
}

// RoundTrip returns the prebuilt response.
func (b *NopBase) RoundTrip(*http.Request) (*http.Response, error) { return b.resp, nil }

// Registrar answers task registrations in-process, after Latency, with a
// fresh plaintext task id shaped like the reference server's
// ("task-" and 16 hex digits). It keeps no per-task state (so memory
// measurements see only what the transport retains) and counts calls. Use
// it through [Registrar.Client] as transport.Options.HTTPClient.
type Registrar struct {
	// Latency is how long each registration takes; a registration whose
	// context ends first fails with the context's error.
	Latency time.Duration

	calls atomic.Int64
	seq   atomic.Uint64
}

// Client returns an http.Client whose transport is r.
func (r *Registrar) Client() *http.Client { return &http.Client{Transport: r} }

// Calls returns the number of task registrations answered or begun.
func (r *Registrar) Calls() int64 { return r.calls.Load() }

// RoundTrip answers POST .../task/register with {"task_id": ...} and
// everything else with 404.
func (r *Registrar) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/task/register") {
		return response(req, http.StatusNotFound, `{"error":"not found"}`), nil
	}
	r.calls.Add(1)
	if r.Latency > 0 {
		t := time.NewTimer(r.Latency)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		}
	}
	var id [len("task-") + 16]byte
	copy(id[:], "task-")
	hexID := strconv.FormatUint(r.seq.Add(1)|1<<63, 16) // always 16 digits
	copy(id[len("task-"):], hexID)
	return response(req, http.StatusOK, `{"task_id":"`+string(id[:])+`"}`), nil
}

func response(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// runtimeSeq makes runtime ids unique in the process: the process task is
// shared process-wide per runtime, and each workload needs its own.
var runtimeSeq atomic.Uint64

// NewRecord returns a fresh Agent Identity record with a deterministic key
// and a runtime id unique in this process, shaped like the reference
// server's ("rt-" and 16 hex digits).
func NewRecord() identity.Record {
	n := runtimeSeq.Add(1)
	var in [8]byte
	binary.BigEndian.PutUint64(in[:], n)
	seed := sha256.Sum256(in[:])
	key, err := identity.NewPrivateKeyFromSeed(seed[:])
	if err != nil {
		panic(err) // a 32-byte seed is always valid
	}
	return identity.Record{
		AgentRuntimeID:  fmt.Sprintf("rt-%016x", n|1<<63),
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       AccountID,
		ChatGPTUserID:   "user-bench",
		PlanType:        "plus",
	}
}

// Kind tells our transport from the baselines it is compared with.
type Kind uint8

// The kinds of [Case].
const (
	// Baseline cases bound the cost from below: no auth at all, or the
	// minimum any correct auth RoundTripper pays.
	Baseline Kind = iota
	// Peer cases are other libraries doing the same job.
	Peer
	// Ours are agentauth's transport in one of its modes.
	Ours
)

// Case is one variant of the per-request workload.
type Case struct {
	// Name identifies the case in benchmark names and the report.
	Name string
	// Desc says what the case sends.
	Desc string
	Kind Kind
	// Cached reports whether the case is our transport in a cached
	// (steady-state) mode, to which the per-request targets apply.
	Cached bool

	build func(env Env, ctx context.Context) (*Target, error)
}

// Target is a built case: the RoundTripper to drive and the context its
// requests carry.
type Target struct {
	Case Case
	RT   http.RoundTripper
	// Ctx is the request context (with the thread key for the thread case).
	Ctx context.Context
	// Transport is our transport, nil for baselines and peers.
	Transport *transport.Transport
}

// Cases returns every per-request case: the baselines, the peer and our
// transport in each mode, in report order.
func Cases() []Case {
	return []Case{
		{Name: "bare", Desc: "the no-op base alone", Kind: Baseline, build: buildBare},
		{Name: "floor", Desc: "tight floor: shallow request copy, one presized header map, one value array, Authorization and ChatGPT-Account-ID set", Kind: Baseline, build: buildFloor},
		{Name: "clone", Desc: "req.Clone + Header.Set of Authorization and ChatGPT-Account-ID", Kind: Baseline, build: buildClone},
		{Name: "oauth2", Desc: "golang.org/x/oauth2 Transport, StaticTokenSource", Kind: Peer, build: buildOAuth2},
		{Name: "thread", Desc: "ours: AgentAssertion on a cached thread task + routing", Kind: Ours, Cached: true, build: buildAgent(true)},
		{Name: "process", Desc: "ours: AgentAssertion on the process task + routing", Kind: Ours, Cached: true, build: buildAgent(false)},
		{Name: "bearer", Desc: "ours: API key, Bearer, no routing", Kind: Ours, Cached: true, build: buildAPIKey},
		{Name: "flag-off", Desc: "ours: ChatGPT login, flag off: Bearer + routing", Kind: Ours, Cached: true, build: buildFlagOff},
		{Name: "flag-on", Desc: "ours: ChatGPT login, flag on: provisioned identity, AgentAssertion on a cached thread task + routing", Kind: Ours, Cached: true, build: buildFlagOn},
	}
}

// CaseNamed returns the case called name.
func CaseNamed(name string) (Case, bool) {
	for _, c := range Cases() {
		if c.Name == name {
			return c, true
		}
	}
	return Case{}, false
}

// Env is what a [Case] is built on. The zero value is a new [NopBase], a
// [Registrar] without latency and the real clock.
type Env struct {
	// Base is the base RoundTripper; nil means a new NopBase.
	Base http.RoundTripper
	// Registrar answers task registrations; nil means a new Registrar.
	Registrar *Registrar
	// Now is our transport's clock; nil means time.Now. A fixed clock
	// keeps every request in one assertion second (no re-signing).
	Now func() time.Time
}

// Build builds c in env with requests on ctx, and sends one warm-up
// request so that every registration and the first signature are done
// before anything is timed.
func (c Case) Build(ctx context.Context, env Env) (*Target, error) {
	if env.Base == nil {
		env.Base = NewNopBase()
	}
	if env.Registrar == nil {
		env.Registrar = &Registrar{}
	}
	t, err := c.build(env, ctx)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", c.Name, err)
	}
	t.Case = c
	if err := t.Warm(); err != nil {
		return nil, fmt.Errorf("workload %s: warm-up: %w", c.Name, err)
	}
	return t, nil
}

// Warm sends one request to ResourceURL and checks that it succeeded.
func (t *Target) Warm() error {
	return t.Send(NewRequest(t.Ctx, ResourceURL))
}

// Send sends req through the target and reports an error unless it
// succeeded with 200.
func (t *Target) Send(req *http.Request) error {
	resp, err := t.RT.RoundTrip(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Body.Close()
}

// floorAuthorization stands in for a cached header value: the floor sets a
// string it already has, as our cached modes do.
var floorAuthorization = "AgentAssertion " + strings.Repeat("e", 280)

// Floor is the cheapest copy that still honours the RoundTripper rules
// (never modify the caller's request or its header map): a shallow copy of
// the request, one header map presized for the caller's keys and the two
// credential headers, and one array backing every value, the credential
// values included. It is the baseline of the per-request targets.
type Floor struct{ Base http.RoundTripper }

// RoundTrip copies req, sets Authorization and ChatGPT-Account-ID and calls
// the base.
func (f Floor) RoundTrip(req *http.Request) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	n := 2
	for _, vv := range req.Header {
		n += len(vv)
	}
	vals := make([]string, n)
	h := make(http.Header, len(req.Header)+2)
	for k, vv := range req.Header {
		m := copy(vals, vv)
		h[k] = vals[:m:m]
		vals = vals[m:]
	}
	vals[0], vals[1] = floorAuthorization, AccountID
	h["Authorization"] = vals[0:1:1]
	h["Chatgpt-Account-Id"] = vals[1:2:2]
	r.Header = h
	return f.Base.RoundTrip(r)
}

// CloneFloor is what a straightforward auth RoundTripper does: req.Clone
// (which also copies the URL, and whose header map grows past its initial
// size mid-Set) and Header.Set of the same two headers.
type CloneFloor struct{ Base http.RoundTripper }

// RoundTrip clones req, sets the headers and calls the base.
func (f CloneFloor) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", floorAuthorization)
	r.Header.Set("ChatGPT-Account-ID", AccountID)
	return f.Base.RoundTrip(r)
}

func buildBare(env Env, ctx context.Context) (*Target, error) {
	return &Target{RT: env.Base, Ctx: ctx}, nil
}

func buildFloor(env Env, ctx context.Context) (*Target, error) {
	return &Target{RT: Floor{Base: env.Base}, Ctx: ctx}, nil
}

func buildClone(env Env, ctx context.Context) (*Target, error) {
	return &Target{RT: CloneFloor{Base: env.Base}, Ctx: ctx}, nil
}

func buildOAuth2(env Env, ctx context.Context) (*Target, error) {
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-bench-" + strings.Repeat("t", 40), TokenType: "Bearer"})
	return &Target{RT: &oauth2.Transport{Source: src, Base: env.Base}, Ctx: ctx}, nil
}

func buildAgent(thread bool) func(Env, context.Context) (*Target, error) {
	return func(env Env, ctx context.Context) (*Target, error) {
		cred, err := AgentIdentity(NewRecord())
		if err != nil {
			return nil, err
		}
		rt, err := transport.New(env.Base, withClock(transport.Options{
			Credential:    cred,
			AgentIdentity: featureflag.New(false),
			HTTPClient:    env.Registrar.Client(),
		}, env.Now))
		if err != nil {
			return nil, err
		}
		if thread {
			ctx = transport.WithThread(ctx, ThreadKey)
		}
		return &Target{RT: rt, Ctx: ctx, Transport: rt}, nil
	}
}

func buildAPIKey(env Env, ctx context.Context) (*Target, error) {
	rt, err := transport.New(env.Base, withClock(transport.Options{
		Credential:    transport.APIKey("sk-bench-" + strings.Repeat("k", 40)),
		AgentIdentity: featureflag.New(false),
	}, env.Now))
	if err != nil {
		return nil, err
	}
	return &Target{RT: rt, Ctx: ctx, Transport: rt}, nil
}

func buildFlagOff(env Env, ctx context.Context) (*Target, error) {
	rt, err := transport.New(env.Base, withClock(transport.Options{
		Credential:    transport.BearerToken("at-bench-"+strings.Repeat("t", 40), AccountID, false),
		AgentIdentity: featureflag.New(false),
		Fleet:         transport.Fleet{IdentityStore: credentials.NewMemoryStore()},
		HTTPClient:    env.Registrar.Client(),
	}, env.Now))
	if err != nil {
		return nil, err
	}
	return &Target{RT: rt, Ctx: ctx, Transport: rt}, nil
}

// buildFlagOn is a ChatGPT login with use_agent_identity on whose agent
// identity is already in the store (as after the first run), so the
// warm-up request registers only the thread task.
func buildFlagOn(env Env, ctx context.Context) (*Target, error) {
	rec := NewRecord()
	store := credentials.NewMemoryStore()
	if err := store.SaveAgentIdentity(ctx, &rec); err != nil {
		return nil, err
	}
	rt, err := transport.New(env.Base, withClock(transport.Options{
		Credential: transport.ChatGPT(credentials.StaticTokenSource(credentials.Token{
			AccessToken: identity.Secret("at-bench-" + strings.Repeat("t", 40)), AccountID: rec.AccountID, UserID: rec.ChatGPTUserID,
		})),
		AgentIdentity: featureflag.New(true),
		Fleet:         transport.Fleet{IdentityStore: store},
		HTTPClient:    env.Registrar.Client(),
	}, env.Now))
	if err != nil {
		return nil, err
	}
	return &Target{RT: rt, Ctx: transport.WithThread(ctx, ThreadKey), Transport: rt}, nil
}

// CheckCached verifies that the steady state of an "ours" target is what
// the case claims: the expected mode was used and nothing registered or
// signed more than the warm-up did. Baselines and peers pass trivially.
func (t *Target) CheckCached() error {
	if t.Transport == nil {
		return nil
	}
	s := t.Transport.Stats()
	want := map[string]resolver.Mode{
		"thread": resolver.ModeThreadTask, "process": resolver.ModeProcessTask,
		"bearer": resolver.ModeAPIKey, "flag-off": resolver.ModeBearer, "flag-on": resolver.ModeThreadTask,
	}[t.Case.Name]
	var errs []error
	if s.Requests[want] == 0 {
		errs = append(errs, fmt.Errorf("no request in mode %v", want))
	}
	if s.Failures != 0 {
		errs = append(errs, fmt.Errorf("%d failures", s.Failures))
	}
	if regs := s.ThreadRegistrations + s.ProcessRegistrations + s.AgentRegistrations; regs > 1 {
		errs = append(errs, fmt.Errorf("%d registrations, want at most 1", regs))
	}
	return errors.Join(errs...)
}

// withClock returns opts with the transport's clock set to now (a test
// hook, outside transport.Options' user-facing fields).
func withClock(opts transport.Options, now func() time.Time) transport.Options {
	testhooks.Of(&opts).Now = now
	return opts
}

// AgentIdentity is the credential of rec, as [transport.AgentIdentity]
// reads it from the record's JSON (the one encoding that keeps its key).
func AgentIdentity(rec identity.Record) (transport.Credential, error) {
	js, err := rec.StorageJSON()
	if err != nil {
		return transport.Credential{}, err
	}
	return transport.AgentIdentity(js)
}
