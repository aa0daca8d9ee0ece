// Package processtask is the background auth provider: what a sessionless
// caller (a control-plane call, a health check, a job with no conversation
// thread) uses to get Agent Identity authentication without ever seeing a
// task id.
//
// A request whose context carries no thread key is already signed with the
// identity's process task: the one task, registered lazily on first use and
// shared by every transport of the identity in the process. This package
// covers the two cases that rule does not reach:
//
//   - [Background] makes a request sessionless even when its context
//     carries a thread (a control-plane call made from inside a thread's
//     handler): the transport then uses the process task, never the
//     thread's.
//   - [Headers] returns the authentication headers for a request that does
//     not go through the RoundTripper, such as a WebSocket dial or an SSE
//     library that takes headers.
//
// The task cache and the signer stay inside the transport; this package is
// a thin front over it.
package processtask

import (
	"context"
	"net/http"

	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/transport"
)

// ErrForeignOrigin is wrapped by the error [Headers] returns for a URL
// whose origin is not one of the transport's first-party origins (see
// transport.Tuning.AllowedOrigins), or when the transport holds no
// credential: no credential is handed out for it.
var ErrForeignOrigin = errForeignOrigin

// errForeignOrigin is the transport hook's sentinel, so that errors.Is
// matches what it returns.
var errForeignOrigin = transporthook.ErrForeignOrigin

// Background returns a copy of ctx whose requests are sessionless: the
// transport ignores any thread key ctx carries (from
// [transport.WithThread]) and signs with the process task. A later
// transport.WithThread on the returned context tags it with a thread again.
// Cancellation, deadlines and every other value of ctx are kept.
func Background(ctx context.Context) context.Context {
	return transporthook.WithoutThread(ctx)
}

// Headers returns the headers a request to rawURL made with ctx would get
// from t: Authorization (the AgentAssertion of the process task, or of the
// thread's task when ctx carries a thread and was not made [Background];
// Bearer for an API key or a ChatGPT login with use_agent_identity off)
// and the routing headers ChatGPT-Account-ID and X-OpenAI-Fedramp when the
// credential has them. Set them on the request you send yourself, such as
// a WebSocket handshake; ws:// and wss:// URLs are judged as http:// and
// https://.
//
// Headers follows t's rules: a URL outside t's first-party origins gets an
// error wrapping [ErrForeignOrigin], an invalid thread key one wrapping
// transport.ErrInvalidThreadKey, and a failed provisioning or task
// registration a *transport.Error, before anything is sent to rawURL. The
// first call for a task may register it (and so reach the AuthAPI); later
// ones are served from the cache. The request is counted in t's Stats
// under its mode. The returned header holds a credential: do not log it.
//
// An AgentAssertion is valid for a few minutes: call Headers for each
// connection rather than keeping the result.
func Headers(ctx context.Context, t *transport.Transport, rawURL string) (http.Header, error) {
	return transporthook.HeadersFor(t, ctx, rawURL)
}
