// Package identitytest is the reference ChatGPT and Agent Identity backend
// that agentauth's tests, `agentauth serve` and `agentauth demo` run against:
// like net/http/httptest, [NewServer] listens on loopback, and it serves
// agent and task registration, the Agent Identity JWKS, the token endpoint
// and sign-in flows, whoami and protected resources under /v1/, verifying
// everything a production backend would (Bearer tokens, Ed25519
// registration signatures, AgentAssertion headers, task ownership,
// revocation, clock skew) instead of accepting what it is sent. A test
// issues logins ([Server.IssueLogin]) and Agent Identities
// ([Server.NewAgentIdentity]), injects faults per [Route] ([Fault]), and
// reads back [Stats], the registered runtimes and tasks and the requests
// it saw ([SeenRequest]); the credentials it keeps for those assertions
// are redacted whenever a value is printed or logged. Point a client at it
// with transport.Options.BaseURL set to [Server.URL]: that one setting
// makes it the ChatGPT backend, the AuthAPI, the token endpoint and the
// JWKS, and lets plain http in for its loopback address.
package identitytest
