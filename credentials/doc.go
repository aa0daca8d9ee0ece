// Package credentials holds the three credential kinds agentauth can
// authenticate with (an API key, a ChatGPT login, an Agent Identity), loads
// them the way the Codex CLI does from the environment and
// $CODEX_HOME/auth.json, derives the account id and FedRAMP bit of a ChatGPT
// login from its id-token claims, and persists auth.json safely (exclusive
// lock, temp file, fsync, rename, unknown fields preserved). [Load] resolves
// one credential with this precedence: env CODEX_API_KEY, env
// CODEX_AGENT_IDENTITY, auth.json (auth_mode decides when present; otherwise
// agent_identity, then tokens, then OPENAI_API_KEY), env OPENAI_API_KEY, and
// finally [KindNone]. Every type that holds a secret redacts it in fmt and
// log/slog output, and no error carries a secret value.
package credentials
