package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unsafe"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/replay"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/threadkey"
	"github.com/agentauth/agentauth/internal/useragent"
	"github.com/agentauth/agentauth/resolver"
)

// Transport is an [http.RoundTripper] that authenticates first-party
// requests from their context. Build it with [New]; it is safe for
// concurrent use and cheap to share: make one per credential and reuse it.
// Its state sits behind a pointer, so printing, logging or marshalling a
// Transport shows no credential.
type Transport struct{ *engine }

// engine is a Transport's state.
type engine struct {
	base  http.RoundTripper
	s     *settings
	kind  credentials.Kind
	flag  Flag
	stats counters

	// authz is the credential's authorizer, chosen once by New: API key,
	// Bearer, Agent Identity, or a ChatGPT login that is Bearer with the
	// flag off and a provisioned identity bound to its login with it on.
	authz func(ctx context.Context, thread string, hasThread bool) (authorization, error)

	apiKeyHeader string        // precomputed "Bearer <key>" for API keys
	bearer       *bearerSource // ChatGPT login tokens
	agent        *agentState   // Agent Identity credentials: built by New
	provisioner  *provisioner  // ChatGPT login: its provisioned identities
	ids          *identity.Client
	obs          *observer // nil without config.Observer

	cred    *credential    // what New was given or detected, closed by Close
	passLog passThroughLog // origins logged as sent without credentials
	usage   usageState     // the last usage answers reported (usage.go)
}

// Flag is the use_agent_identity switch as the transport reads it: once
// per request, so an implementation must be cheap and safe for concurrent
// use. *featureflag.Flag implements it.
type Flag interface{ Enabled() bool }

type offFlag struct{}

func (offFlag) Enabled() bool { return false }

// New returns a Transport that sends requests through base (nil means
// http.DefaultTransport) with the credential of cfg. Settings that
// contradict each other or cannot work (an http origin on a non-loopback
// host or without AllowInsecureHTTP, an unparsable agent key, a negative
// duration) are rejected here rather than on the first request.
//
// With the flag off and a ChatGPT login, an API key or no credential, New
// starts no goroutine and no registration ever happens.
func newTransport(base http.RoundTripper, cfg config) (*Transport, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	t := &Transport{&engine{base: base, s: s, flag: offFlag{}, obs: newObserver(s.Observer)}}
	if s.Flag != nil {
		t.flag = s.Flag
	}
	client := s.RegistrationClient
	if client == nil {
		client = &http.Client{
			Transport:     base,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	t.ids = &identity.Client{
		HTTPClient:   client,
		AuthAPIBase:  s.authAPIBase,
		Now:          s.Now,
		AgentTimeout: s.AgentTimeout,
		TaskTimeout:  s.ThreadCache.Timeout, // one attempt may use the whole per-registration bound
		Originator:   useragent.Originator(s.Originator, s.Getenv),
	}

	creds := s.Credentials
	switch {
	case creds == nil && s.TokenSource != nil:
		t.kind = credentials.KindChatGPT
	case creds == nil:
		t.kind = credentials.KindNone
	default:
		t.kind = creds.Kind
	}
	switch t.kind {
	case credentials.KindAPIKey:
		if t.apiKeyHeader, err = headers.Bearer(creds.APIKey); err != nil {
			return nil, newError(ErrCredential, resolver.ModeAPIKey, err)
		}
		t.authz = t.authorizeAPIKey
	case credentials.KindChatGPT:
		src := s.TokenSource
		if src == nil {
			src = credentials.StaticTokenSource(credentials.Token{
				AccessToken: identity.Secret(creds.ChatGPT.AccessToken),
				AccountID:   creds.ChatGPT.AccountID,
				UserID:      creds.ChatGPT.UserID,
				FedRAMP:     creds.ChatGPT.FedRAMP,
			})
		}
		t.bearer = &bearerSource{src: src, obs: t.obs}
		t.provisioner = newProvisioner(t)
		t.authz = t.authorizeChatGPT
		if creds != nil && creds.ChatGPT != nil && creds.ChatGPT.ExternallyManaged {
			// Tokens an outside host manages (auth_mode chatgptAuthTokens)
			// are never provisioned, as in Codex: they stay Bearer whatever
			// the flag says.
			t.authz = func(ctx context.Context, _ string, _ bool) (authorization, error) { return t.bearer.authorize(ctx) }
		}
	case credentials.KindAgentIdentity:
		if t.agent, err = t.newAgentState(creds.AgentIdentity); err != nil {
			return nil, err
		}
		t.authz = t.authorizeIdentity
	}
	t.obs.attach(t)
	return t, nil
}

// RoundTrip implements [http.RoundTripper].
//
// It honours the RoundTripper contract: req is never modified (the
// credential is set on a shallow copy with its own header map), and
// req.Body is closed exactly once on every path, including errors returned
// before the base transport is called. Requests to origins outside the
// allow-list, and every request when there is no credential, go to the base
// transport untouched. On a 401 to an AgentAssertion request, or a 400 or
// 404 whose error code says the task is gone (invalid_task_id,
// task_not_found, task_expired), the task is re-registered once (shared by
// concurrent rejections) and the request replayed once if its body can be
// replayed (no body, or GetBody set); a 401 to a Bearer request asks a
// refreshing token source once and replays likewise.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.kind == credentials.KindNone || !t.s.origins.allows(req.URL) {
		t.stats.add(resolver.ModePassThrough, uintptr(unsafe.Pointer(req)))
		if t.kind != credentials.KindNone {
			// Holding a credential it did not send: say so once per
			// origin at debug level, or a 401 from that server is silent.
			t.passLog.note(t.s.Logger, req)
		}
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	// Each authorizer validates the thread key before anything reaches
	// the network; the assertion modes do it only when the key misses
	// their task cache, which holds valid keys only.
	thread, hasThread := ThreadFrom(ctx)
	a, err := t.authz(ctx, thread, hasThread)
	if err != nil {
		return t.fail(req, err)
	}
	resp, err := t.send(req, req.Body, &a)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return t.recoverUnauthorized(req, resp, &a, thread, hasThread)
	case http.StatusBadRequest, http.StatusNotFound:
		// A task the server no longer knows is replaced as after a 401.
		if isAssertion(a.mode) {
			r, gone := peekTaskGone(resp)
			if gone {
				return t.recoverUnauthorized(req, r, &a, thread, hasThread)
			}
			resp = r
		}
	}
	t.noteUsage(ctx, resp) // usage.go
	return resp, nil
}

// authorization is the outcome of mode selection and credential lookup for
// one request.
type authorization struct {
	mode    resolver.Mode
	header  string
	routing headers.Routing
	task    *taskcache.Task    // assertion modes
	agent   *agentState        // assertion modes
	token   *credentials.Token // Bearer mode
}

func (t *Transport) authorizeAPIKey(_ context.Context, thread string, hasThread bool) (authorization, error) {
	if err := checkThread(thread, hasThread); err != nil {
		return authorization{}, err
	}
	return authorization{mode: resolver.ModeAPIKey, header: t.apiKeyHeader}, nil
}

// checkThread validates the thread key of a request whose credential does
// not look it up in a task cache: an invalid key fails in every mode.
func checkThread(thread string, hasThread bool) error {
	if !hasThread {
		return nil
	}
	if err := threadkey.Validate(thread); err != nil {
		return newError(ErrInvalidThreadKey, resolver.ModeThreadTask, err)
	}
	return nil
}

// authorizeIdentity signs with the user-given Agent Identity. A runtime
// the AuthAPI no longer knows is a permanent error naming it: the library
// cannot replace an identity it did not provision.
func (t *Transport) authorizeIdentity(ctx context.Context, thread string, hasThread bool) (authorization, error) {
	a, err := t.agent.authorize(ctx, t, thread, hasThread)
	if err != nil {
		if status, ok := staleStatus(err); ok {
			return authorization{}, newError(ErrRegistration, modeFor(hasThread),
				&staleIdentityError{runtimeID: t.agent.record.AgentRuntimeID, statusCode: status, err: err})
		}
	}
	return a, err
}

// authorizeChatGPT is Bearer with the flag off. With it on, the request is
// signed with the identity of the token's own login, provisioned on first
// use; Bearer goes out only during an announced, counted fallback (when
// provisioning, or later a task registration for that identity, is
// unavailable).
func (t *Transport) authorizeChatGPT(ctx context.Context, thread string, hasThread bool) (authorization, error) {
	if !t.flag.Enabled() {
		if err := checkThread(thread, hasThread); err != nil {
			return authorization{}, err
		}
		return t.bearer.authorize(ctx)
	}
	// A key the current identity has cached was valid when it was cached;
	// any other is validated before the token source or provisioning can
	// reach the network.
	var now time.Time
	var hit *taskcache.Task
	hitAgent := t.provisioner.current()
	if hasThread && hitAgent != nil {
		now = t.s.Now()
		hit = hitAgent.threads.Peek(thread, hitAgent.cacheTime(now))
	}
	if hit == nil {
		if err := checkThread(thread, hasThread); err != nil {
			return authorization{}, err
		}
	}
	tok, err := t.bearer.token(ctx)
	if err != nil {
		return authorization{}, err
	}
	for retried := false; ; retried = true {
		agent, ls, err := t.provisioner.agent(ctx, tok)
		if err != nil {
			return authorization{}, err
		}
		if agent == nil {
			return t.bearer.headerFor(tok)
		}
		var a authorization
		if hit != nil && agent == hitAgent {
			a, err = agent.sign(hit, resolver.ModeThreadTask, now)
		} else {
			a, err = agent.authorize(ctx, t, thread, hasThread)
		}
		hit = nil // a retry looks the key up again
		if err == nil {
			t.provisioner.signed(ctx, ls, agent)
			return a, nil
		}
		if status, ok := staleStatus(err); ok {
			// The identity was provisioned from this login: replace it once.
			if !retried && t.provisioner.markStale(ls, agent) {
				continue
			}
			return authorization{}, newError(ErrRegistration, modeFor(hasThread),
				&staleIdentityError{runtimeID: agent.record.AgentRuntimeID, statusCode: status, err: err})
		}
		if taskUnavailable(err) {
			// The identity was provisioned from this login, which has a
			// Bearer token to fall back to.
			t.provisioner.taskFallback(ctx, ls, agent, err)
			return t.bearer.headerFor(tok)
		}
		return authorization{}, err
	}
}

// taskUnavailable reports whether err is a task registration that failed
// temporarily after its own attempts (429, 5xx, a timeout or a connection
// error), or a key still backing off after such a failure. A caller that
// stopped waiting, a panic or a permanent answer is not an outage, and
// neither is the backoff after one: a backoff is as temporary as the
// failure behind it.
func taskUnavailable(err error) bool {
	var be *taskcache.BackoffError
	var re *taskcache.AttemptError
	return (errors.As(err, &be) || errors.As(err, &re)) && IsTemporary(err)
}

func modeFor(hasThread bool) resolver.Mode {
	if hasThread {
		return resolver.ModeThreadTask
	}
	return resolver.ModeProcessTask
}

// staleStatus reports whether err is the AuthAPI saying at task
// registration that it does not know the runtime (404) or will not take
// its signature (401), and returns that status.
func staleStatus(err error) (int, bool) {
	var re *identity.RegistrationError
	if errors.As(err, &re) && re.Op == identity.OpTaskRegistration &&
		(re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusUnauthorized) {
		return re.StatusCode, true
	}
	return 0, false
}

// send clones req with the credential and routing headers and sends it with
// body. The credential and routing values go into spare slots of the
// array that backs the copied values (each capped to its one slot, so a
// base that appends to one cannot overwrite another): a request costs the
// copy of the request, its header map and one value array, nothing per
// header the transport sets.
func (t *Transport) send(req *http.Request, body io.ReadCloser, a *authorization) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	r.Body = body
	routing := a.mode != resolver.ModeAPIKey
	extra := 1
	if routing {
		if a.routing.AccountID != "" {
			extra++
		}
		if a.routing.FedRAMP {
			extra++
		}
	}
	h, spare := cloneHeader(req.Header, extra, routing)
	spare[0] = a.header
	h[headers.Authorization] = spare[0:1:1]
	if routing {
		i := 1
		if a.routing.AccountID != "" {
			spare[i] = a.routing.AccountID
			h[headers.ChatGPTAccountID] = spare[i : i+1 : i+1]
			i++
		}
		if a.routing.FedRAMP {
			spare[i] = headers.FedRAMPValue
			h[headers.OpenAIFedRAMP] = spare[i : i+1 : i+1]
		}
	}
	r.Header = h
	t.stats.add(a.mode, uintptr(unsafe.Pointer(r)))
	return t.base.RoundTrip(r)
}

// recoverUnauthorized handles a 401 to an authenticated request: the
// rejected task is dropped, one re-registration is shared with concurrent
// 401s, and the request is replayed at most once. The 401 is read and
// closed before any recovery work, so its connection is free for the
// registration (which may need the same host); a bounded copy of it is
// returned when recovery fails. A key whose re-registered task was
// rejected again at once is not re-registered for the backoff: the
// resource, not the task, is refusing. A 401 to a ChatGPT Bearer request
// is answered by recoverBearer.
func (t *Transport) recoverUnauthorized(req *http.Request, resp *http.Response, a *authorization, thread string, hasThread bool) (*http.Response, error) {
	if a.mode == resolver.ModeAPIKey {
		return resp, nil
	}
	ctx := req.Context()
	if a.mode == resolver.ModeBearer {
		return t.recoverBearer(req, resp, a)
	}
	if isAssertion(a.mode) {
		if a.agent.held(a.task, t.s.Now()) {
			return resp, nil
		}
		// The task is dropped whether or not this request can be replayed,
		// so the next request registers a fresh one instead of being
		// rejected on the revoked task until it idles out.
		a.agent.invalidate(ctx, a.task)
	}
	if !replay.Possible(req) {
		t.obs.recovery(ctx, a.mode, recoveryNotReplayable)
		return resp, nil
	}
	resp = buffer(resp)
	next, err := t.authz(ctx, thread, hasThread)
	if err != nil {
		// The 401 says more than a failed recovery would; keep it.
		t.s.Logger.DebugContext(ctx, "agentauth: 401 recovery failed", "mode", a.mode.String(), "error", err)
		t.obs.recovery(ctx, a.mode, recoveryFailed)
		return resp, nil
	}
	body, err := replay.Body(req)
	if err != nil {
		t.obs.recovery(ctx, a.mode, recoveryFailed)
		return resp, nil
	}
	drain(resp)
	t.stats.replays.Add(1)
	t.obs.recovery(ctx, a.mode, recoveryReplayed)
	out, err := t.send(req, body, &next)
	if err == nil && isAssertion(a.mode) && isAssertion(next.mode) && next.agent == a.agent && next.task != a.task {
		var rejected bool
		out, rejected = rejectsFreshTask(out) // task_gone.go
		if rejected {
			next.agent.hold(next.task, t.s.Now(), t.holdFor())
		}
	}
	return out, err
}

// holdFor is how long a key whose fresh task was rejected at once is not
// re-registered after a 401: the thread cache's longest backoff.
func (t *Transport) holdFor() time.Duration {
	if d := t.s.ThreadCache.BackoffMax; d > 0 {
		return d
	}
	return max(taskcache.DefaultBackoffMax, t.s.ThreadCache.BackoffInitial)
}

// maxBufferedUnauthorized bounds the copy of a 401 kept while recovering.
const maxBufferedUnauthorized = 64 << 10

// buffer reads resp's body (up to maxBufferedUnauthorized) and closes it,
// returning resp with the copy as its body.
func buffer(resp *http.Response) *http.Response {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBufferedUnauthorized+1))
	resp.Body.Close()
	out := new(http.Response)
	*out = *resp
	if len(data) > maxBufferedUnauthorized {
		data = data[:maxBufferedUnauthorized]
		out.ContentLength = -1
		out.Header = resp.Header.Clone()
		out.Header.Del("Content-Length")
	} else {
		out.ContentLength = int64(len(data))
	}
	out.Body = io.NopCloser(bytes.NewReader(data))
	return out
}

// recoverBearer answers a 401 to a ChatGPT Bearer request: it asks a
// refreshing token source for another token and replays. Only when that
// token came from the store (a reload finding a token someone else
// refreshed, which may be stale too) and is rejected as well does it ask
// again, now for a network refresh, and replay once more; a token fresh
// from the endpoint that is rejected at once says the resource, not the
// token, is refusing, and another refresh would only spend the login's
// single-use refresh token (a source that does not say where its token
// came from is asked once). Then the 401 is returned. Each 401 body is
// read into memory (at most 64 KiB) and its connection released before
// any recovery work, so the token endpoint or the store never waits for a
// connection the 401 holds. A request that cannot be replayed still
// triggers one refresh, for the requests after it.
func (t *Transport) recoverBearer(req *http.Request, resp *http.Response, a *authorization) (*http.Response, error) {
	ctx := req.Context()
	resp = buffer(resp)
	rejected := a.token
	for attempt := 0; attempt < 2; attempt++ {
		next, origin, ok, err := t.bearer.refresh(ctx, rejected)
		if !ok {
			t.obs.recovery(ctx, a.mode, recoveryUnsupported)
			return resp, nil
		}
		if err != nil {
			// The 401 says more than a failed recovery would; keep it.
			t.s.Logger.DebugContext(ctx, "agentauth: 401 recovery failed", "mode", a.mode.String(), "error", err)
			t.obs.recovery(ctx, a.mode, recoveryFailed)
			return resp, nil
		}
		if !replay.Possible(req) {
			t.obs.recovery(ctx, a.mode, recoveryNotReplayable)
			return resp, nil
		}
		body, err := replay.Body(req)
		if err != nil {
			t.obs.recovery(ctx, a.mode, recoveryFailed)
			return resp, nil
		}
		t.stats.replays.Add(1)
		t.obs.recovery(ctx, a.mode, recoveryReplayed)
		r, err := t.send(req, body, &next)
		if err != nil || r.StatusCode != http.StatusUnauthorized || attempt == 1 || origin != credentials.RefreshFromStore {
			return r, err
		}
		resp, rejected = buffer(r), next.token
	}
	return resp, nil
}

// drain discards a little of a response body so the connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// fail closes the request body, counts the failure and returns err.
func (t *Transport) fail(req *http.Request, err error) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	t.stats.failures.Add(1)
	var ae *Error
	if !errors.As(err, &ae) {
		err = newError(ErrCredential, resolver.ModePassThrough, err)
	}
	t.s.Logger.DebugContext(req.Context(), "agentauth: request not authenticated", "error", err)
	return nil, err
}

// cloneHeader copies h with room for extra more keys, leaving out every
// spelling of the headers the transport sets (Authorization, and with
// routing also ChatGPT-Account-ID and X-OpenAI-Fedramp): a caller's
// "authorization" in lower case would otherwise travel beside the
// transport's own. Values are copied into one backing array, as
// http.Header.Clone does, which also holds the extra values the caller
// will set: spare has at least extra unused slots of it.
func cloneHeader(h http.Header, extra int, routing bool) (out http.Header, spare []string) {
	n := extra
	for _, vv := range h {
		n += len(vv)
	}
	sv := make([]string, n)
	out = make(http.Header, len(h)+extra)
	for k, vv := range h {
		if ownedHeader(k, routing) {
			continue
		}
		if vv == nil {
			out[k] = nil
			continue
		}
		m := copy(sv, vv)
		out[k] = sv[:m:m]
		sv = sv[m:]
	}
	return out, sv
}

// ownedHeader reports whether k is a spelling of a header the transport
// sets. It switches on the length first: most keys have none of the three
// lengths and cost one comparison, not three case-folding ones.
func ownedHeader(k string, routing bool) bool {
	switch len(k) {
	case len(headers.Authorization):
		return strings.EqualFold(k, headers.Authorization)
	case len(headers.ChatGPTAccountID):
		return routing && strings.EqualFold(k, headers.ChatGPTAccountID)
	case len(headers.OpenAIFedRAMP):
		return routing && strings.EqualFold(k, headers.OpenAIFedRAMP)
	}
	return false
}

// WrappedRoundTripper returns the base transport, as client-go's wrappers
// do, so tools can walk the chain.
func (t *Transport) WrappedRoundTripper() http.RoundTripper { return t.base }

// CloseIdleConnections forwards to the base transport (and so to the
// registration client, which shares it unless RegistrationClient is set),
// so http.Client.CloseIdleConnections reaches every layer.
func (t *Transport) CloseIdleConnections() {
	type closeIdler interface{ CloseIdleConnections() }
	if c, ok := t.base.(closeIdler); ok {
		c.CloseIdleConnections()
	}
	if rc := t.s.RegistrationClient; rc != nil {
		rc.CloseIdleConnections()
	}
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() Stats {
	var s Stats
	for i := range s.Requests {
		s.Requests[i] = t.stats.requestsIn(i)
	}
	s.ThreadRegistrations = t.stats.threadRegs.Load()
	s.AgentRegistrations = t.stats.agentRegs.Load()
	s.Failures = t.stats.failures.Load()
	s.Replays = t.stats.replays.Load()
	s.BearerFallbacks = t.stats.bearerFallbacks.Load()
	s.Usage = t.usage.snapshot()
	agent := t.agent
	if t.provisioner != nil {
		agent = t.provisioner.current()
	}
	if agent != nil {
		s.Signatures = agent.signer.Signatures()
		s.CachedThreads = agent.threads.Len()
		s.ProcessRegistrations = agent.process.Stats().Registrations
	}
	return s
}

// isAssertion reports whether mode m signs with an AgentAssertion.
func isAssertion(m resolver.Mode) bool {
	return m == resolver.ModeThreadTask || m == resolver.ModeProcessTask
}
