// Package identitytest is a reference Agent Identity server for tests, in the
// spirit of net/http/httptest: [NewServer] starts a real loopback listener
// that serves agent registration, task registration, the Agent Identity JWKS
// and protected resources under /v1/, and it really verifies everything a
// production backend would (Bearer tokens, Ed25519 registration signatures,
// AgentAssertion headers, task ownership, revocation and clock skew) instead
// of accepting whatever it is sent. Tests drive it through per-route fault
// injection (status codes, Retry-After, latency, malformed, oversized or
// missing task ids, dropped or hung connections, revoked tasks) and read back
// exact counters, the registered tasks and the headers every protected
// request carried. The server keeps the credentials it was sent in memory so
// tests can assert on them, but never prints or logs them; `agentauth serve`
// runs the same server from the command line.
//
// To point a client at it, set agentauth.Options.BaseURL to [Server.URL]:
// that one setting makes the server the ChatGPT backend, the AuthAPI, the
// token endpoint ([Server.TokenURL]) and the JWKS, and lets plain http in
// for its loopback address. (This package cannot hand out an
// agentauth.Options itself: the packages agentauth is built from use this
// one in their tests.)
package identitytest
