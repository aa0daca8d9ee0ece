// Package featureflag holds the use_agent_identity switch: when it is on,
// agentauth provisions an Agent Identity from a ChatGPT login and signs
// first-party requests with AgentAssertion instead of Bearer. It is off by
// default and can be set in code, from the environment variable
// AGENTAUTH_USE_AGENT_IDENTITY, or from Codex's config.toml
// ([features] use_agent_identity = true), in that order of precedence. A
// [Flag] is an atomic switch, so it can be flipped at run time without
// rebuilding clients; API-key and Agent Identity credentials do not depend
// on it.
package featureflag
