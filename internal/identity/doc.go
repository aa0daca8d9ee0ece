// Package identity implements the Agent Identity wire protocol used by the
// Codex CLI: Ed25519 keys in PKCS#8 form, the AgentAssertion authorization
// header as a pure function of (key, task id, time), the task- and
// agent-registration [Client] (client.go, register.go, agent.go, one
// bounded HTTP exchange each in exchange.go, retry waits in
// retry_wait.go), sealed-box task ids, and verification of Agent Identity
// JWTs against a JWKS; it is deterministic and keeps no cache or shared
// state (the transport layers caching, single flight and policy on top),
// and its secret-bearing types ([PrivateKey], [Record]) redact themselves
// in fmt verbs and log/slog output.
package identity
