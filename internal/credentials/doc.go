// Package credentials holds the credential kinds agentauth can
// authenticate with (an API key or personal access token, a ChatGPT login,
// an Agent Identity), loads them the way the Codex CLI does from the
// environment and $CODEX_HOME/auth.json, derives the account, user and
// FedRAMP bit of a ChatGPT login from its token claims, and shares auth.json
// with a Codex CLI running beside it: agentauth's writers serialise with
// each other on agentauth's own lock ([AuthStorageLockFileName]; the Codex
// CLI takes none and rewrites the file in place), re-read under it, change
// only their members, keep unknown ones and replace the file atomically
// (temp file, fsync, rename, mode 0600).
//
// [Load] resolves one credential with this precedence: env CODEX_API_KEY,
// env CODEX_ACCESS_TOKEN ("at-..." a personal access token, else an Agent
// Identity JWT), env CODEX_AGENT_IDENTITY, auth.json (auth_mode decides
// when present; otherwise agent_identity as a JWT, then
// personal_access_token, then tokens, then OPENAI_API_KEY), env
// OPENAI_API_KEY, and finally [KindNone].
//
// [NewRefreshingTokenSource] keeps a ChatGPT login alive as Codex does
// (refresh ahead of expiry, one refresh per login across processes, the
// Codex CLI included, under a [RefreshCoordinator] such as
// [NewAuthFileCoordinator]).
//
// Every type that holds a secret redacts it in fmt, log/slog and JSON
// output, and no error carries a secret value.
package credentials
