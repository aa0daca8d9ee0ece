package transport

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"unsafe"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
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
	closed  atomic.Bool    // Close has run
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

// WrappedRoundTripper returns the base transport, as client-go's wrappers
// do, so tools can walk the chain.
func (t *Transport) WrappedRoundTripper() http.RoundTripper { return t.base }

// CloseIdleConnections forwards to the base transport (and so to the
// auth-call client, which shares it unless Options.HTTPClient is set), so
// http.Client.CloseIdleConnections reaches every layer.
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
