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
package identitytest
