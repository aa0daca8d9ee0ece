package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/agentauth/agentauth/login"
)

const logoutSynopsis = `agentauth logout [--codex-home DIR]

Revokes the ChatGPT login's refresh token (its access token when there is
none) at the issuer, as Codex does, then removes the login from auth.json
under agentauth's own lock, keeping every member that is not the login's. A failed
revoke still logs out locally and says so (exit 1). See docs/logout.md.`

func init() {
	register(command{
		name:    "logout",
		summary: "revoke the ChatGPT login and remove it from auth.json",
		run:     runLogout,
	})
}

func runLogout(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("logout")
	home := fs.String("codex-home", "", "directory holding auth.json (default: $CODEX_HOME, else ~/.codex)")
	issuer := fs.String("experimental_issuer", "", "OAuth issuer whose revoke endpoint to use (default: Codex's, or $CODEX_REVOKE_TOKEN_URL_OVERRIDE)")
	clientID := fs.String("experimental_client-id", "", "OAuth client id (default: $CODEX_APP_SERVER_LOGIN_CLIENT_ID, else Codex's)")
	if code, done := parseFlags(fs, logoutSynopsis, args, stdout, stderr); done {
		return code
	}
	err := login.Logout(ctx, login.Options{CodexHome: *home, Issuer: *issuer, ClientID: *clientID, Out: stdout})
	switch {
	case errors.Is(err, login.ErrNotLoggedIn):
		fmt.Fprintln(stdout, "Not logged in.")
		return exitOK
	case errors.Is(err, login.ErrRevokeFailed):
		return failure(stderr, fs.Name(), fmt.Errorf("logged out locally, but %w", err))
	case err != nil:
		return failure(stderr, fs.Name(), err)
	}
	fmt.Fprintln(stdout, "Logged out.")
	return exitOK
}
