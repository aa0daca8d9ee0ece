// Package transport provides the [http.RoundTripper] that authenticates
// outgoing requests to the ChatGPT / Codex backend the way the Codex CLI
// does, choosing the credential of each request from its context.
//
// Wrap a client once:
//
//	rt, err := transport.New(http.DefaultTransport, transport.config{Credentials: creds, Flag: flag})
//	client := &http.Client{Transport: rt}
//
// then tag work with a conversation thread:
//
//	req = req.WithContext(transport.WithThread(ctx, threadID))
//
// A request to a first-party origin whose context carries a thread key is
// signed with an AgentAssertion bound to that thread's task (registered once
// per thread); one without a thread key is signed with the identity's hidden
// process task; with the use_agent_identity flag off a ChatGPT login keeps
// plain Bearer, byte for byte; an API key is always Bearer. Requests to any
// other origin, including cross-origin redirect hops, get no credential.
//
// Each request passes four steps: the origin guard (a request to an origin
// outside the allow-list, see [config.AllowedOrigins], is sent untouched),
// mode selection (by the credential kind, fixed by [New], and by the flag and
// the thread key, read per request: the behaviour matrix of docs/protocol.md),
// credential attachment (the API key, the login's Bearer token, or an
// AgentAssertion on the thread or process task, provisioning an identity
// first when the flag asks for one) and the routing headers
// ([headers.Routing]). They work on one
// shallow clone of the request, so the caller's request is never modified
// and the whole chain costs a single clone; the base transport stays
// reachable through [Transport.WrappedRoundTripper]. Errors are [*Error]:
// classify them with [errors.Is] against [ErrCredential], [ErrRegistration],
// [ErrProvisioning] or [ErrInvalidThreadKey].
//
// Package processtask makes a request sessionless even when its context
// carries a thread, and hands out the headers of a request sent outside
// the RoundTripper (a WebSocket or SSE client).
//
// docs/protocol.md in the repository describes the wire formats, the
// behaviour matrix and the guarantees in full.
package transport
