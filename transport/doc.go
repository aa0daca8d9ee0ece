// Package transport is agentauth's one user path: an [http.RoundTripper]
// that authenticates outgoing requests to the ChatGPT / Codex backend the
// way the Codex CLI does, choosing the credential of each request from
// its context.
//
// Build a client once; with the zero [Options] it reads the Codex home
// (~/.codex or $CODEX_HOME) and the environment as Codex does:
//
//	client, err := transport.NewClient(transport.Options{})
//
// then tag work with a conversation thread:
//
//	req = req.WithContext(transport.WithThread(ctx, threadID))
//
// With the use_agent_identity flag on, a request to a first-party origin
// whose context carries a thread key is signed with an AgentAssertion on
// that thread's task (registered once per thread); one without a thread
// key on the identity's hidden process task. With the flag off a ChatGPT
// login keeps plain Bearer, byte for byte; an API key is always Bearer.
// Requests to any other origin, including cross-origin redirect hops, get
// no credential.
//
// Why here and not in the root package: the thread tag, the RoundTripper
// and the constructors belong together, so each of the three usual cases
// (a detected login with threads, a static key, a thread tag) needs this
// one import. A [Credential] is sealed and built only by its constructors;
// the fleet seams ([TokenSource], [RefreshCoordinator], [IdentityStore],
// [TaskStore]) are named here once and implemented by the redisstore
// module; the wire protocol, the auth.json codec and the refresh engine
// live under internal/.
//
// Errors are [*Error], classified with [errors.Is] against the Err
// sentinels and with [IsTemporary]. Package processtask makes a request
// sessionless inside a thread's handler and hands out the headers of a
// WebSocket or SSE connection; docs/protocol.md describes the wire formats
// and the behaviour matrix in full.
package transport
