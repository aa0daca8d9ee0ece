package transport

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/threadkey"
	"github.com/agentauth/agentauth/resolver"
)

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
