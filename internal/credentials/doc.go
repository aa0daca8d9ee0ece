// Package credentials is agentauth's credential engine: the credential
// kinds a request can authenticate with (an API key or personal access
// token, a ChatGPT login, an Agent Identity), [Load] resolving one the way
// the Codex CLI does from the environment and $CODEX_HOME/auth.json, the
// auth.json codec (authfile_*.go) and its writers that share the file with
// a Codex CLI running beside them (agentauth's own lock, re-read under it,
// only their members changed, atomic replace), and
// [NewRefreshingTokenSource], which keeps a ChatGPT login alive as Codex
// does: refresh ahead of expiry, one refresh per login across processes
// under a [RefreshCoordinator], never sending a spent refresh token
// (refresh_*.go, one file per concern). Every type that holds a secret
// redacts it in fmt, log/slog and JSON output, and no error carries a
// secret value.
package credentials
