// Package login signs a machine in to ChatGPT the way the Codex CLI does,
// without the Codex CLI, and writes $CODEX_HOME/auth.json in the shape
// Codex writes it, so Codex and this module then share the login:
//
//   - [DeviceCode]: the device-code flow a headless server can use. It
//     prints a verification URL and a one-time code, polls until the user
//     has approved the code in a browser elsewhere, and exchanges the
//     result for tokens.
//   - [Browser]: the browser flow with PKCE (S256) and a state check, with
//     a loopback callback server on Codex's port (1455).
//   - [Logout]: revokes the login's refresh token (or its access token when
//     there is no refresh token) and removes the login from auth.json,
//     keeping every member that is not the login's. A failed revoke still
//     logs out locally and is reported with [ErrRevokeFailed].
//   - [WorkloadIdentity]: no human login at all. A platform OIDC token read
//     from OPENAI_IDENTITY_TOKEN_FILE is exchanged, with the federation
//     rule OPENAI_FEDERATION_RULE_ID, for a short-lived ChatGPT access
//     token, re-exchanged ahead of its expiry.
//
// Every flow honours Codex's overrides: the issuer (Options.Issuer, the
// CLI's --experimental_issuer), the client id (Options.ClientID, else
// CODEX_APP_SERVER_LOGIN_CLIENT_ID), CODEX_REVOKE_TOKEN_URL_OVERRIDE and
// CODEX_REFRESH_TOKEN_URL_OVERRIDE for the revoke endpoint, and
// CODEX_WIF_TOKEN_URL_OVERRIDE (loopback only) for the federation
// endpoint. No error and no printed line carries a token, a code verifier
// or an authorization code.
package login
