package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/headers"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/resolver"
)

// Transport is an [http.RoundTripper] that authenticates first-party
// requests from their context. Build it with [New]; it is safe for
// concurrent use and cheap to share: make one per credential and reuse it.
type Transport struct {
	base  http.RoundTripper
	s     *settings
	kind  credentials.Kind
	flag  flagReader
	stats counters

	apiKeyHeader string        // precomputed "Bearer <key>" for API keys
	bearer       *bearerSource // ChatGPT login tokens
	agent        *agentState   // Agent Identity credentials: built by New
	provisioner  *provisioner  // ChatGPT login with the flag on
	ids          *identity.Client
}

type flagReader interface{ Enabled() bool }

type offFlag struct{}

func (offFlag) Enabled() bool { return false }

// New returns a Transport that sends requests through base (nil means
// http.DefaultTransport) with the credential of cfg. Settings that
// contradict each other or cannot work (an http origin without
// AllowInsecureHTTP, an unparsable agent key, a negative duration) are
// rejected here rather than on the first request.
//
// With the flag off and a ChatGPT login, an API key or no credential, New
// starts no goroutine and no registration ever happens.
func New(base http.RoundTripper, cfg Config) (*Transport, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	t := &Transport{base: base, s: s, flag: offFlag{}}
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
	case credentials.KindChatGPT:
		src := s.TokenSource
		if src == nil {
			src = credentials.StaticTokenSource(credentials.Token{
				AccessToken: creds.ChatGPT.AccessToken,
				AccountID:   creds.ChatGPT.AccountID,
				FedRAMP:     creds.ChatGPT.FedRAMP,
			})
		}
		t.bearer = &bearerSource{src: src}
		t.provisioner = newProvisioner(t)
	case credentials.KindAgentIdentity:
		if t.agent, err = t.newAgentState(creds.AgentIdentity); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// RoundTrip implements [http.RoundTripper].
//
// It honours the RoundTripper contract: req is never modified (the
// credential is set on a shallow copy with its own header map), and
// req.Body is closed exactly once on every path, including errors returned
// before the base transport is called. Requests to origins outside the
// allow-list, and every request when there is no credential, go to the base
// transport untouched. On a 401 to an AgentAssertion request the task is
// re-registered once (shared by concurrent 401s) and the request replayed
// once if its body can be replayed (no body, or GetBody set); a 401 to a
// Bearer request asks a refreshing token source once and replays likewise.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.kind == credentials.KindNone || !t.s.origins.allows(req.URL) {
		t.stats.requests[resolver.ModePassThrough].Add(1)
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	thread, hasThread := ThreadFrom(ctx)
	if hasThread {
		if err := ValidateThreadKey(thread); err != nil {
			return t.fail(req, newError(ErrInvalidThreadKey, resolver.ModeThreadTask, err))
		}
	}
	a, err := t.authorize(ctx, thread, hasThread)
	if err != nil {
		return t.fail(req, err)
	}
	resp, err := t.send(req, req.Body, &a)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	return t.recoverUnauthorized(req, resp, &a, thread, hasThread)
}

// authorization is the outcome of mode selection and credential lookup for
// one request.
type authorization struct {
	mode    resolver.Mode
	header  string
	routing headers.Routing
	task    *resolver.Task     // assertion modes
	agent   *agentState        // assertion modes
	token   *credentials.Token // Bearer mode
}

// authorize selects the mode (resolver.Decide) and obtains the credential.
func (t *Transport) authorize(ctx context.Context, thread string, hasThread bool) (authorization, error) {
	flagOn := t.flag.Enabled()
	agent := t.agent
	if t.kind == credentials.KindChatGPT && flagOn {
		var err error
		// A nil agent without an error means provisioning is cooling down.
		if agent, err = t.provisioner.agent(ctx); err != nil {
			return authorization{}, err
		}
	}
	mode := resolver.Decide(resolver.Input{
		Kind:           t.kind,
		FlagOn:         flagOn,
		HasThread:      hasThread,
		FirstParty:     true, // the origin guard in RoundTrip already passed
		BearerFallback: agent == nil,
	})
	switch mode {
	case resolver.ModeAPIKey:
		return authorization{mode: mode, header: t.apiKeyHeader}, nil
	case resolver.ModeBearer:
		return t.bearer.authorize(ctx)
	case resolver.ModeThreadTask, resolver.ModeProcessTask:
		return agent.authorize(ctx, t, thread, hasThread)
	}
	return authorization{}, newError(ErrCredential, mode, errors.New("no credential for this request"))
}

// send clones req with the credential and routing headers and sends it with
// body.
func (t *Transport) send(req *http.Request, body io.ReadCloser, a *authorization) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	r.Body = body
	r.Header = cloneHeader(req.Header, 3)
	r.Header[headers.Authorization] = []string{a.header}
	if a.mode != resolver.ModeAPIKey {
		a.routing.Apply(r.Header)
	}
	t.stats.requests[a.mode].Add(1)
	return t.base.RoundTrip(r)
}

// recoverUnauthorized answers a 401. For an AgentAssertion: one
// invalidation, one re-registration shared with concurrent 401s, at most
// one replay. For a ChatGPT Bearer token: see recoverBearer.
func (t *Transport) recoverUnauthorized(req *http.Request, resp *http.Response, a *authorization, thread string, hasThread bool) (*http.Response, error) {
	if a.mode == resolver.ModeAPIKey {
		return resp, nil
	}
	ctx := req.Context()
	if a.mode == resolver.ModeBearer {
		return t.recoverBearer(req, resp, a)
	}
	if a.mode.IsAssertion() {
		// The task is dropped whether or not this request can be replayed,
		// so the next request registers a fresh one instead of being
		// rejected on the revoked task until it idles out.
		a.agent.invalidate(ctx, a.task)
	}
	if !replayable(req) {
		return resp, nil
	}
	next, err := a.agent.authorize(ctx, t, thread, hasThread)
	if err != nil {
		// The 401 says more than a failed recovery would; keep it.
		t.s.Logger.DebugContext(ctx, "agentauth: 401 recovery failed", "mode", a.mode.String(), "error", err)
		return resp, nil
	}
	body, err := replayBody(req)
	if err != nil {
		return resp, nil
	}
	drain(resp)
	t.stats.replays.Add(1)
	return t.send(req, body, &next)
}

// recoverBearer answers a 401 to a ChatGPT Bearer request: it asks a
// refreshing token source for another token (a reload of the stored
// login first) and replays; if that is rejected too it asks again (now a
// network refresh) and replays once more; then the 401 is returned. Each
// 401 body is read into memory (at most 64 KiB) and its connection
// released before any recovery work, so the token endpoint or the store
// never waits for a connection the 401 holds. A request that cannot be
// replayed still triggers one refresh, for the requests after it.
func (t *Transport) recoverBearer(req *http.Request, resp *http.Response, a *authorization) (*http.Response, error) {
	ctx := req.Context()
	bufferBody(resp)
	rejected := a.token
	for attempt := 0; attempt < 2; attempt++ {
		next, ok, err := t.bearer.refresh(ctx, rejected)
		if !ok {
			return resp, nil
		}
		if err != nil {
			// The 401 says more than a failed recovery would; keep it.
			t.s.Logger.DebugContext(ctx, "agentauth: 401 recovery failed", "mode", a.mode.String(), "error", err)
			return resp, nil
		}
		if !replayable(req) {
			return resp, nil
		}
		body, err := replayBody(req)
		if err != nil {
			return resp, nil
		}
		t.stats.replays.Add(1)
		r, err := t.send(req, body, &next)
		if err != nil || r.StatusCode != http.StatusUnauthorized || attempt == 1 {
			return r, err
		}
		bufferBody(r)
		resp, rejected = r, next.token
	}
	return resp, nil
}

// bufferBody reads a response body into memory (at most 64 KiB), closes
// the original so its connection is released, and puts the bytes back.
func bufferBody(resp *http.Response) {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func replayBody(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	return req.GetBody()
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

// cloneHeader copies h with room for extra more keys. Values are shared
// slices' contents copied into one backing array, as http.Header.Clone does.
func cloneHeader(h http.Header, extra int) http.Header {
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	sv := make([]string, n)
	out := make(http.Header, len(h)+extra)
	for k, vv := range h {
		if vv == nil {
			out[k] = nil
			continue
		}
		m := copy(sv, vv)
		out[k] = sv[:m:m]
		sv = sv[m:]
	}
	return out
}

// WrappedRoundTripper returns the base transport, as client-go's wrappers
// do, so tools can walk the chain.
func (t *Transport) WrappedRoundTripper() http.RoundTripper { return t.base }

// Unwrap is WrappedRoundTripper.
func (t *Transport) Unwrap() http.RoundTripper { return t.base }

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
		s.Requests[i] = t.stats.requests[i].Load()
	}
	s.ThreadRegistrations = t.stats.threadRegs.Load()
	s.AgentRegistrations = t.stats.agentRegs.Load()
	s.Failures = t.stats.failures.Load()
	s.Replays = t.stats.replays.Load()
	s.BearerFallbacks = t.stats.bearerFallbacks.Load()
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

// String describes the transport by its credential kind only. The
// transport holds credentials (an API key's header, a token source, agent
// keys) that Go's default struct formatting would print.
func (t *Transport) String() string {
	if t == nil {
		return "agentauth.Transport(nil)"
	}
	return "agentauth.Transport{kind: " + t.kind.String() + "}"
}

// GoString is [Transport.String], so %#v redacts too.
func (t *Transport) GoString() string { return t.String() }

// Format makes every fmt verb print [Transport.String].
func (t *Transport) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue logs the credential kind only.
func (t *Transport) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("agentauth.Transport(nil)")
	}
	return slog.GroupValue(slog.String("kind", t.kind.String()))
}
