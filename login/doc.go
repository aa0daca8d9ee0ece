// Package login gets a machine a ChatGPT login the way the Codex CLI does,
// without the Codex CLI: [DeviceCode] (headless: a code the user approves
// in a browser elsewhere) and [Browser] (PKCE with a loopback callback)
// sign in and write $CODEX_HOME/auth.json in Codex's shape, so Codex and
// this module share the login; [Logout] revokes it and removes it from
// auth.json; [WorkloadIdentity] exchanges a platform OIDC token for a
// ChatGPT access token with no human at all; [CommandTokenSource] and
// [CallerHeaders] take auth a caller supplies (a command's output, fixed
// headers), as Codex's provider auth does.
//
// Every flow honours Codex's overrides: the issuer (Options.Issuer, the
// CLI's --experimental_issuer), the client id (Options.ClientID, else
// CODEX_APP_SERVER_LOGIN_CLIENT_ID), CODEX_REVOKE_TOKEN_URL_OVERRIDE and
// CODEX_REFRESH_TOKEN_URL_OVERRIDE for the revoke endpoint, and
// CODEX_WIF_TOKEN_URL_OVERRIDE (loopback only) for the federation
// endpoint. No error and no printed line carries a token, a code verifier
// or an authorization code.
package login
