// Package identity implements the Agent Identity wire protocol used by the
// Codex CLI: Ed25519 keys in PKCS#8 form, the AgentAssertion authorization
// header as a pure function of (key, task id, time), the task- and
// agent-registration clients, sealed-box task ids, and verification of Agent
// Identity JWTs against a JWKS.
//
// Everything here is deterministic and free of caching or shared state; the
// transport package layers caching, single-flight and policy on top.
// Secret-bearing types ([PrivateKey], [Record]) redact themselves in fmt
// verbs and log/slog output.
package identity
