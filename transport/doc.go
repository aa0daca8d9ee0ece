// Package transport provides the [http.RoundTripper] that authenticates
// outgoing requests to the ChatGPT / Codex backend the way the Codex CLI
// does, choosing the credential of each request from its context.
//
// Wrap a client once:
//
//	rt, err := transport.New(http.DefaultTransport, transport.Config{Credentials: creds, Flag: flag})
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
// The work of one request is split into single-purpose steps, each in its
// own file: the origin guard (origin.go), mode selection
// ([resolver.Decide]), credential attachment (auth.go, provision.go) and
// routing headers ([headers.Routing]). They run over one shallow clone of
// the request so the whole chain costs a single clone, and the base
// transport stays reachable through [Transport.WrappedRoundTripper].
package transport
